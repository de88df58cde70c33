"""The route table as an nginx configuration (included inside `http { }`).

The same routes in the same order: every route's pattern becomes an anchored regular
expression in one `map`, whose entries nginx tries in order, first match wins, exactly
as the matcher does. Each entry also requires the route's flags: its sale window (a
regular expression over `$msec`, so a window opens and closes without a reload) and its
canary side (`split_clients` on the canary cookie, with the matcher's hash and thresholds,
and the tester header when it comes with the canary secret). Redirects are answered by
nginx; every response gets `X-Edge-Route`.

Routes match `$uri`, which nginx has already decoded and rid of dot segments exactly as
the matcher does (`merge_slashes off` keeps duplicate slashes, as Django does); the origin
gets the request's path as it was sent, with the origin secret every origin requires.

The trace starts at the edge, which decides its sampling whatever the viewer's
`X-Amzn-Trace-Id` says: a well-formed Root is kept, under the edge's own Parent and
`Sampled=`, and the header is minted otherwise: `$request_id` gives the random parts, and a one-line Perl
`perl_set` the epoch seconds in hex (nginx has no arithmetic), so the main context must load
the Perl module (`main_context()`; Debian: libnginx-mod-http-perl).
"""

from __future__ import annotations

from pathlib import Path

from edge import matcher
from edge.lambda_edge import CANARY_COOKIE_MAX_AGE

# How long nginx keeps an idle connection to an origin: less than the origins keep one (gunicorn's
# `keepalive` in config/gunicorn.py, granian's 30 s wait for a request's headers).
UPSTREAM_IDLE_SECONDS = 20

ALWAYS = "1"
PERL_MODULE = Path("/usr/lib/nginx/modules/ngx_http_perl_module.so")


def main_context() -> str:
    """What nginx's main context needs for this config: the Perl module, where it is a module."""
    return f"load_module {PERL_MODULE};\n" if PERL_MODULE.exists() else ""


def _trace_lines(sample_rate: float) -> list[str]:
    """`$edge_trace_id`: the request's X-Ray Root (or one minted here), under this edge's Parent
    and sampling decision."""
    lines = [
        """perl_set $edge_trace_epoch 'sub { sprintf("%08x", time()) }';""",
    ]
    if sample_rate >= 1:
        lines += ["map $request_id $edge_trace_sampled { default 1; }"]
    elif sample_rate * 100 < 0.005:  # none, or below split_clients' smallest share (0.01 %)
        lines += ["map $request_id $edge_trace_sampled { default 0; }"]
    else:
        percent = f"{sample_rate * 100:.2f}".rstrip("0").rstrip(".")
        lines += ["split_clients $request_id $edge_trace_sampled {", f"    {percent}% 1;", "    * 0;", "}"]
    lines += [
        # 32 random hex digits: the first 24 are the Root's, the last 16 the Parent's.
        "map $request_id $edge_trace_minted {",
        '    "~^(?<edge_ta>[0-9a-f]{16})(?<edge_tb>[0-9a-f]{8})(?<edge_tc>[0-9a-f]{8})$"'
        ' "Root=1-${edge_trace_epoch}-${edge_ta}${edge_tb};Parent=${edge_tb}${edge_tc};Sampled=${edge_trace_sampled}";',
        "}",
        "map $request_id $edge_trace_parent {",
        '    "~^[0-9a-f]{16}(?<edge_tp>[0-9a-f]{16})$" $edge_tp;',
        "}",
        "map $http_x_amzn_trace_id $edge_trace_root {",
        '    "~(^|;)\\s*Root=(?<edge_tr>1-[0-9a-f]{8}-[0-9a-f]{24})\\s*(;|$)" $edge_tr;',
        '    default "";',
        "}",
        "map $edge_trace_root $edge_trace_id {",
        '    "" $edge_trace_minted;',
        '    default "Root=${edge_trace_root};Parent=${edge_trace_parent};Sampled=${edge_trace_sampled}";',
        "}",
    ]
    return lines


class Unexportable(ValueError):
    """A value nginx would read as configuration, or write into a header as it stands."""


def _q(value: str) -> str:
    """A double-quoted nginx string. A control character is refused: nginx would write a line
    break into a header as it stands (the models refuse them first)."""
    if matcher.has_control_character(value):
        raise Unexportable(f"{value!r} holds a control character: nginx would write it into a header")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _host(name: str, origin: dict) -> str:
    """An origin's `server` address; a domain that is not a host is refused (the models refuse
    it first), since nginx would read it as configuration."""
    if not matcher.is_host(str(origin["domain"])):
        raise Unexportable(f"origin {name}: {origin['domain']!r} is not a host name: change it in the admin")
    return f"{origin['domain']}:{int(origin['port'])}"


def _regex(value: str) -> str:
    # Inside quotes nginx unescapes \" \' \\ \t \r \n: every backslash of the regex is
    # doubled and every quote escaped, so nginx hands PCRE the regex exactly (a route's `"`,
    # which the regex escapes as \", stayed \\" and ended the string early).
    return _q(value)


def _literal_regex(value: str) -> str:
    """An anchored, case-sensitive regex matching exactly `value`."""
    return "~^" + "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in value) + "$"


def upstream_name(origin: str) -> str:
    return "edge_origin_" + "".join(c if c.isalnum() else "_" for c in origin)


def _same_length(lo: str, hi: str) -> list[str]:
    if lo == hi:
        return [lo]
    if len(lo) == 1:
        return [f"[{lo}-{hi}]"]
    if lo[0] == hi[0]:
        return [lo[0] + rest for rest in _same_length(lo[1:], hi[1:])]
    n = len(lo) - 1
    out: list[str] = []
    first = int(lo[0])
    if lo[1:] != "0" * n:
        out += [lo[0] + rest for rest in _same_length(lo[1:], "9" * n)]
        first += 1
    last = int(hi[0])
    tail: list[str] = []
    if hi[1:] != "9" * n:
        tail = [hi[0] + rest for rest in _same_length("0" * n, hi[1:])]
        last -= 1
    if first <= last:
        out.append(f"[{first}-{last}][0-9]{{{n}}}")
    return out + tail


def integer_range_regex(lo: int, hi: int) -> str:
    """A regular expression matching exactly the decimal integers lo..hi (no leading zeros)."""
    parts: list[str] = []
    for length in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        b = min(hi, 10**length - 1)
        if a <= b:
            parts += _same_length(str(a), str(b))
    return "(?:" + "|".join(parts) + ")"


def _window_regex(route: matcher.Route) -> str:
    lo = route.window_start if route.window_start is not None else 0
    hi = route.window_end - 1 if route.window_end is not None else 9_999_999_999
    return "~^" + integer_range_regex(lo, hi) + r"\."


def _route_flags(i: int, route: matcher.Route, lines: list[str]) -> tuple[str, str]:
    """Declares the window and canary variables of route `i`; returns their expressions."""
    window = ALWAYS
    canary = ALWAYS
    if route.window_start is not None or route.window_end is not None:
        window = f"${{edge_window_{i}}}"
        lines += [f"map $msec $edge_window_{i} {{", f"    {_regex(_window_regex(route))} 1;", "    default 0;", "}"]
    if route.canary_percent is not None:
        canary = f"${{edge_canary_{i}}}"
        name = f"$edge_canary_{i}"
        percent = route.canary_percent
        if percent <= 0:
            lines += [f"map $edge_tester {name} {{", '    "~*^in$" 1;', "    default 0;", "}"]
        elif percent >= 100:
            lines += [f"map $edge_tester {name} {{", '    "~*^out$" 0;', "    default 1;", "}"]
        else:
            lines += [
                f"split_clients $edge_canary_key $edge_split_{i} {{",
                f"    {percent}% 1;",
                "    * 0;",
                "}",
                f'map "$edge_tester:$edge_split_{i}" {name} {{',
                '    "~*^in:" 1;',
                '    "~*^out:" 0;',
                '    "~:1$" 1;',
                "    default 0;",
                "}",
            ]
    return window, canary


LOG_FORMAT = "edge_redacted"


def _log_format_lines() -> list[str]:
    """An access log format whose request line keeps no bearer secret: an order status URL's
    token segment, a query string (a signed order link's `access`) and a path segment holding
    a mailbox (raw or `%40`, from its first on) are each logged as `-`; nor the Referer, which
    can carry them too."""
    return [
        "map $request_uri $edge_logged_uri {",
        '    "~^(?<edge_lu_status>/shop/[^/?]+/[^/?]+/orders/[^/?]+/)[^/?]+" "${edge_lu_status}-";',
        '    "~^(?<edge_lu_mail>[^?]*?)/[^/?]*(?:@|%40)" "${edge_lu_mail}/-";',
        '    "~^(?<edge_lu_path>[^?]*)[?]" "${edge_lu_path}?-";',
        "    default $request_uri;",
        "}",
        f"log_format {LOG_FORMAT} '$remote_addr - $remote_user [$time_local] "
        '"$request_method $edge_logged_uri $server_protocol" $status $body_bytes_sent "$http_user_agent"\';',
        "",
    ]


def server_config(table: dict, *, listen: str = "80", server_name: str = "_", origin_secret: str = "") -> str:
    routes = matcher.routes_from_table(table)
    origins = table["origins"]
    default_origin = table["default_origin"]
    cookie = table.get("canary_cookie", matcher.CANARY_COOKIE)
    lines = [
        "# The shop's edge routes, generated by `manage.py edge_export --target nginx`.",
        "# Include inside http { }. Do not edit: change the routes and export again.",
        f"# Log with `access_log PATH {LOG_FORMAT};` after the include: nginx's `combined` keeps",
        "# the order status URLs' tokens, the signed order links and any mailbox in a path.",
        "",
        *_log_format_lines(),
    ]
    # Only the origins a route can reach: nginx resolves every upstream's host when it loads
    # the config, and an origin nobody routes to must not stop it from loading.
    used = {default_origin} | {route.origin for route in routes if route.origin}
    for name, origin in origins.items():
        if name not in used:
            continue
        # Keep-alive connections to each origin: a stampede must not pay a TCP handshake per request.
        # Each is closed by nginx before the origin would close it (UPSTREAM_IDLE_SECONDS): one the
        # origin closed as nginx sent a request on it answers 502, and nginx sends no POST again.
        lines += [
            f"upstream {upstream_name(name)} {{",
            f"    server {_host(name, origin)};",
            "    keepalive 32;",
            f"    keepalive_timeout {UPSTREAM_IDLE_SECONDS}s;",
            "}",
        ]
    # The tester header counts only with the canary secret; without one it never counts.
    lines.append("map $http_x_edge_canary_secret $edge_tester {")
    if table.get("canary_secret"):
        lines.append(f"    {_regex(_literal_regex(table['canary_secret']))} $http_x_edge_canary;")
    lines += ['    default "";', "}"]
    lines += [
        f"map $cookie_{cookie} $edge_canary_key {{",
        '    "" $request_id;',
        f"    default $cookie_{cookie};",
        "}",
    ]
    lines += _trace_lines(table.get("trace_sample_rate", 1.0))
    flags = []
    for i, route in enumerate(routes):
        flags += _route_flags(i, route, lines)
    flag_string = "".join(flags)
    width = 2 * len(routes)

    def key(i: int, *, window_only: bool = False) -> str:
        required = "1." if window_only else "11"
        prefix = f".{{{2 * i}}}" if i else ""
        suffix = f".{{{width - 2 * i - 2}}}" if width - 2 * i - 2 else ""
        body = matcher.pattern_regex_source(routes[i].pattern)[1:]
        # (?s): a decoded %0A is one more character for `*`, as in the matcher.
        return _regex(f"~(?s)^{prefix}{required}{suffix}\\|{body}")

    lines.append(f'map "{flag_string}|$uri" $edge_route {{')
    lines += [f"    {key(i)} {route.name};" for i, route in enumerate(routes)]
    lines += [f"    default {matcher.DEFAULT_ROUTE};", "}"]
    # A buyer without the cookie who reaches a canary route (its window open, no earlier
    # route applying) gets the key the decision used, as the matcher issues it.
    lines.append(f'map "{flag_string}|$uri" $edge_reaches_canary {{')
    for i, route in enumerate(routes):
        if route.canary_percent is not None:
            lines.append(f"    {key(i, window_only=True)} 1;")
        else:
            lines.append(f"    {key(i)} 0;")
    lines += ["    default 0;", "}"]
    lines += [
        f'map "$edge_reaches_canary$cookie_{cookie}" $edge_set_cookie {{',
        f'    "1" "{cookie}=$request_id; Path=/; Max-Age={CANARY_COOKIE_MAX_AGE}; SameSite=Lax";',
        '    default "";',
        "}",
    ]

    def origin_map(variable: str, value) -> None:
        lines.append(f"map $edge_route {variable} {{")
        for route in routes:
            if route.origin and route.origin in origins:
                lines.append(f"    {route.name} {_q(value(origins[route.origin]))};")
        lines.extend([f"    default {_q(value(origins[default_origin]))};", "}"])

    origin_map("$edge_upstream", lambda o: upstream_name(o["name"]))
    origin_map("$edge_scheme", lambda o: o["protocol"])
    origin_map("$edge_origin_path", lambda o: o.get("path", ""))
    origin_map("$edge_origin_domain", lambda o: o["domain"])
    origin_map("$edge_origin_kind", lambda o: o["kind"])
    lines += [
        # API Gateway and S3 answer only to their own Host; the monolith keeps the viewer's.
        "map $edge_origin_kind $edge_host {",
        "    web $host;",
        "    default $edge_origin_domain;",
        "}",
        "map $request_uri $edge_raw_path {",
        '    "~^(?<edge_p>[^?]*)" $edge_p;',
        "}",
        # S3 has no default document: a directory's index.html (the workshop's rewrite).
        'map "$edge_origin_kind|$edge_raw_path" $edge_index {',
        '    "~^s3\\|.*/$" index.html;',
        '    default "";',
        "}",
        "server {",
        f"    listen {listen};",
        f"    server_name {server_name};",
        "    merge_slashes off;",
        "    absolute_redirect off;",
        "    add_header X-Edge-Route $edge_route always;",
        "    add_header Set-Cookie $edge_set_cookie always;",
        "    location / {",
    ]
    for route in routes:
        if route.is_redirect:
            lines += [
                f"        if ($edge_route = {route.name}) {{",
                f"            return {route.redirect_status or 302} {_q(route.redirect_url)};",
                "        }",
            ]
    lines += [
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $edge_host;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Edge-Route $edge_route;",
        "        proxy_set_header X-Amzn-Trace-Id $edge_trace_id;",
        '        proxy_set_header X-Edge-Canary-Secret "";',
        *([f"        proxy_set_header X-Origin-Verify {_q(origin_secret)};"] if origin_secret else []),
        "        proxy_hide_header X-Edge-Route;",
        "        proxy_ssl_server_name on;",
        "        proxy_ssl_name $edge_origin_domain;",
        "        proxy_pass $edge_scheme://$edge_upstream$edge_origin_path$edge_raw_path$edge_index$is_args$args;",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)
