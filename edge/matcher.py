"""Route matching with CloudFront's path-pattern semantics, shared by every edge router.

Plain Python with no Django import: the same file runs in the Django middleware, in the
Lambda@Edge function (packaged beside its baked-in route table) and in the exporters.

Rules (CloudFront's, exactly): `*` matches any run of characters, `/` included; `?`
matches exactly one; matching is case-sensitive; the query string is ignored; a pattern's
leading slash is optional; routes are tried in order and the first that applies wins;
the default origin is last.

A route *applies* when its pattern matches, its sale window (if any) is open and the
buyer is on the canary side (if it has a canary). A route that does not apply is passed
over and the next one is tried, so a sale that has not started yet, or a buyer outside
the canary, lands exactly where they would without the route.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from urllib.parse import quote, unquote_to_bytes

DEFAULT_ROUTE = "default"
DEFAULT_ORIGIN = "monolith"
CANARY_COOKIE = "edge_canary"
# A tester forces every canary on (`in`) or off (`out`) with this header, honoured only
# together with the canary secret in CANARY_SECRET_HEADER: anybody can send a header.
# (The Lambda@Edge router passes other names: CloudFront reserves X-Edge-*.)
CANARY_HEADER = "x-edge-canary"
CANARY_SECRET_HEADER = "x-edge-canary-secret"  # noqa: S105 - a header name
# The X-Edge-Route of a redirect to a path's normal form (a route name may not take it).
NORMALIZE_ROUTE = "normalize"
# What a path keeps unescaped in its normal form: RFC 3986's pchar and "/".
PATH_SAFE = "-._~!$&'()*+,;=:@/"
MAX_PATTERN_LENGTH = 255
# CloudFront's documented characters, plus its two wildcards; `&` travels as `&amp;` in
# CloudFront's XML API (boto3 escapes it), so a pattern holds a plain `&`.
PATTERN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.*?$/~\"'@:+&")
REDIRECT_STATUSES = (301, 302, 307, 308)
# An origin's host as every router writes it (nginx's `server`, CloudFront's DomainName): a
# DNS name or an IPv4 address, nothing nginx could read as syntax.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"(?=.{{1,254}}\Z){_LABEL}(?:\.{_LABEL})*\.?\Z")  # a fully qualified name may end in a dot
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def is_host(value: str) -> bool:
    return HOST.match(value) is not None


def has_control_character(value: str) -> bool:
    """A line break, tab or other control character: a header written with one is split."""
    return CONTROL_CHARACTER.search(value) is not None


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    origin: str | None = None
    enabled: bool = True
    window_start: int | None = None  # epoch seconds, inclusive
    window_end: int | None = None  # epoch seconds, exclusive
    canary_percent: int | None = None
    redirect_url: str = ""
    redirect_status: int | None = None

    @property
    def is_redirect(self) -> bool:
        return bool(self.redirect_url)

    @property
    def is_conditional(self) -> bool:
        """Whether the route may be passed over for reasons other than its pattern."""
        return self.window_start is not None or self.window_end is not None or self.canary_percent is not None

    @classmethod
    def from_dict(cls, data: Mapping) -> Route:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Decision:
    route: str
    origin: str | None
    redirect_url: str = ""
    redirect_status: int | None = None
    # A canary cookie value created for this request, to be set on the response.
    issued_canary_key: str | None = None
    trace: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_redirect(self) -> bool:
        return bool(self.redirect_url)


def normalize_pattern(pattern: str) -> str:
    """The pattern with its (optional) leading slash, as it matches a URI's path."""
    return pattern if pattern.startswith("/") else "/" + pattern


def pattern_regex_source(pattern: str) -> str:
    """The anchored regular expression (PCRE and Python alike) equivalent to a pattern."""
    out = []
    for char in normalize_pattern(pattern):
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char.isascii() and char.isalnum():
            out.append(char)
        else:
            # A backslash before a non-alphanumeric character is a literal in both dialects.
            out.append("\\" + char)
    return "^" + "".join(out) + "$"


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern_regex_source(pattern), re.DOTALL)


def path_of(uri: str) -> str:
    """The path a pattern is matched against: no query string, always a leading slash."""
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return path if path.startswith("/") else "/" + path


def pattern_matches(pattern: str, uri: str) -> bool:
    """Whether `pattern` matches `uri` as written (CloudFront's own behaviour selection)."""
    return _compiled(pattern).match(path_of(uri)) is not None


def product_addresses(category: str, slug: str) -> tuple[str, ...]:
    """What the hot path takes over of a product on sale: its page, its orders API (buy-now)
    and its stock figures. A route that sends any of them there needs the product's sale."""
    page = f"/shop/{category}/{slug}/"
    return (page, page + "orders", page + "stock")


def pattern_matches_product(pattern: str, category: str, slug: str) -> bool:
    return any(pattern_matches(pattern, address) for address in product_addresses(category, slug))


def remove_dot_segments(path: str) -> str:
    """RFC 3986's remove_dot_segments, as nginx applies it to `$uri`."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/".join(out) if out and out[0] == "" else "/" + "/".join(out)


def decoded_path(uri: str) -> str:
    """The path an origin resolves: escapes decoded one character per byte, dot segments removed."""
    return remove_dot_segments(unquote_to_bytes(path_of(uri)).decode("latin-1"))


def normal_form(uri: str) -> str:
    """The one spelling of a path that CloudFront's behaviours match as the origins resolve it:
    decoded, dot segments removed, and escaped again only where a path needs it."""
    return quote(decoded_path(uri).encode("latin-1"), safe=PATH_SAFE)


def first_pattern(routes: Iterable[Route], path: str) -> str | None:
    """The route whose behaviour CloudFront selects for `path` as written."""
    return next((r.name for r in routes if r.enabled and pattern_matches(r.pattern, path)), None)


def spelling_problem(routes: list[Route], uri: str) -> str:
    """ "redirect" when `uri` is not in its normal form; "refuse" when even its normal form
    would make CloudFront pick another behaviour than the decoded path gets (an escape, a
    space say, that a `?` wildcard counts as three characters as written and one decoded);
    "" when CloudFront's choice is the one the origins' view of the path gets."""
    path = path_of(uri)
    if path != normal_form(path):
        return "redirect"
    if first_pattern(routes, path) != first_pattern(routes, decoded_path(path)):
        return "refuse"
    return ""


def canary_tester(
    headers: Mapping[str, str],
    secret: str,
    *,
    header: str = CANARY_HEADER,
    secret_header: str = CANARY_SECRET_HEADER,
) -> str:
    """The tester header's `in`/`out`, or "" unless the request carries the canary secret.
    `headers` has lower-case names; so have `header` and `secret_header`."""
    given = headers.get(secret_header) or ""
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return ""
    force = (headers.get(header) or "").strip().lower()
    return force if force in ("in", "out") else ""


def pattern_errors(pattern: str) -> list[str]:
    """Why CloudFront would refuse a pattern (empty when it is acceptable)."""
    errors = []
    if not pattern:
        errors.append("The path pattern is empty.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        errors.append(f"The path pattern has {len(pattern)} characters; CloudFront allows at most 255.")
    bad = sorted({c for c in pattern if c not in PATTERN_ALPHABET})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        errors.append(
            f"The path pattern contains characters CloudFront does not accept: {shown}. "
            "Allowed: A-Z a-z 0-9 _ - . * ? $ / ~ \" ' @ : + &."
        )
    return errors


def pattern_covers(general: str, specific: str) -> bool:
    """Whether every path matched by `specific` is also matched by `general`.

    Sound but not complete: True is always right; a rare False may hide a cover.
    """
    a, b = normalize_pattern(general), normalize_pattern(specific)

    @cache
    def covers(i: int, j: int) -> bool:
        if i < len(a) and a[i] == "*":
            return covers(i + 1, j) or (j < len(b) and covers(i, j + 1))
        if j == len(b):
            return i == len(a)
        if i == len(a) or b[j] == "*":
            return False
        if b[j] == "?":
            return a[i] == "?" and covers(i + 1, j + 1)
        return (a[i] == b[j] or a[i] == "?") and covers(i + 1, j + 1)

    return covers(0, 0)


def murmur_hash2(data: bytes) -> int:
    """nginx's `ngx_murmur_hash2`, which `split_clients` uses: the canary buckets agree."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    h = length & mask
    i = 0
    while length >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
        i += 4
        length -= 4
    if length >= 3:
        h ^= data[i + 2] << 16
    if length >= 2:
        h ^= data[i + 1] << 8
    if length >= 1:
        h ^= data[i]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def canary_threshold(percent: int) -> int:
    """The hash below which a key is on the canary side (nginx's split_clients arithmetic)."""
    return percent * 100 * 0xFFFFFFFF // 10000


def in_canary(percent: int, key: str) -> bool:
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    return murmur_hash2(key.encode()) < canary_threshold(percent)


def window_open(route: Route, now: float) -> bool:
    second = int(now)
    if route.window_start is not None and second < route.window_start:
        return False
    return not (route.window_end is not None and second >= route.window_end)


def new_canary_key() -> str:
    return secrets.token_hex(16)


def parse_cookie_header(values: Iterable[str]) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, sep, val = part.strip().partition("=")
            if sep and name and name not in cookies:
                cookies[name] = val.strip()
    return cookies


def decide(
    routes: Iterable[Route],
    uri: str,
    *,
    now: float,
    cookies: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    make_key: Callable[[], str] = new_canary_key,
    default_origin: str = DEFAULT_ORIGIN,
    canary_secret: str = "",
    canary_header: str = CANARY_HEADER,
    canary_secret_header: str = CANARY_SECRET_HEADER,
) -> Decision:
    """Which route serves `uri` (as sent: it is decoded here), and why. `headers` has
    lower-case names; the tester header `canary_header` counts only with `canary_secret`
    in `canary_secret_header`."""
    cookies = cookies or {}
    headers = headers or {}
    path = decoded_path(uri)
    trace: list[tuple[str, str]] = []
    force = canary_tester(headers, canary_secret, header=canary_header, secret_header=canary_secret_header)
    key = cookies.get(CANARY_COOKIE) or ""
    issued = None
    for route in routes:
        if not route.enabled:
            trace.append((route.name, "disabled"))
            continue
        if not _compiled(route.pattern).match(path):
            trace.append((route.name, f"pattern {route.pattern} does not match {path}"))
            continue
        if not window_open(route, now):
            trace.append((route.name, "pattern matches, but the sale window is closed"))
            continue
        if route.canary_percent is not None:
            # A buyer reaching a canary without a cookie gets one, tester or not.
            if not key:
                key = issued = make_key()
            if force in ("in", "out"):
                chosen = force == "in"
                why = f"tester header {canary_header}: {force}"
            else:
                chosen = in_canary(route.canary_percent, key)
                why = f"canary {route.canary_percent}% by cookie {CANARY_COOKIE}"
            if not chosen:
                trace.append((route.name, f"pattern matches, but the buyer is outside the canary ({why})"))
                continue
            trace.append((route.name, f"pattern matches; buyer inside the canary ({why})"))
        else:
            trace.append((route.name, "pattern matches: first match wins"))
        if route.is_redirect:
            return Decision(
                route.name,
                None,
                route.redirect_url,
                route.redirect_status or 302,
                issued_canary_key=issued,
                trace=trace,
            )
        return Decision(route.name, route.origin, issued_canary_key=issued, trace=trace)
    trace.append((DEFAULT_ROUTE, f"no route applies: the default origin {default_origin}"))
    return Decision(DEFAULT_ROUTE, default_origin, issued_canary_key=issued, trace=trace)


def routes_from_table(table: Mapping) -> list[Route]:
    return [Route.from_dict(r) for r in table.get("routes", [])]
