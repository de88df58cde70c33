"""Lambda@Edge router: what CloudFront behaviours cannot express, done at the edge.

Packaged by `edge_export --target lambda-edge` as `edge/lambda_edge.py` beside
`edge/matcher.py` and the baked-in `edge/routes.json` (Lambda@Edge has no environment
variables). No Django import. One function serves three events, told apart by
`config.eventType`:

- viewer-request (every behaviour): a path CloudFront would match as written differently
  from how the origins resolve it (`%2D`, `/../`) is sent to its normal form with a 308,
  since CloudFront picks the behaviour before any function runs; then redirects (a
  viewer-request response is not cached);
- origin-request: sale windows, canary with its cookie, the tester header, and switching
  the origin (custom or S3) for the request;
- origin-response: `X-Shop-Route` and, for a new buyer, the canary cookie.

CloudFront reserves some header names (RESERVED_PREFIXES): it removes `X-Edge-*` from
requests before any function sees them, and a function that adds such a header fails
CloudFront's validation, which answers 502. So on CloudFront the route header every other
router calls `X-Edge-Route` is `X-Shop-Route`, the tester headers are `X-Shop-Canary` and
`X-Shop-Canary-Secret`, and the events pass the route and a fresh canary key to each other
in `x-shop-*` headers, which viewer-request first removes from what the viewer sent.

The trace starts here: on viewer-request (every behaviour runs it) the edge decides whether
the request is sampled, whatever the viewer's `X-Amzn-Trace-Id` says, keeping a well-formed
Root; a request without one gets one, minted with no library (`trace_header_mint`), and
origin-request mints one again if it is still missing.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from pathlib import Path

from edge import matcher

ROUTES_FILE = Path(__file__).with_name("routes.json")
# Header names CloudFront keeps for itself ("Restrictions on all edge functions"): never
# shown to a function, and a function adding one gets the viewer a 502.
RESERVED_PREFIXES = ("x-edge-", "x-amz-cf-")
# The route on the response (X-Edge-Route elsewhere) and on the request to the origin.
ROUTE_HEADER = "X-Shop-Route"
# Carries a freshly issued canary key from one event to the next of the same request.
ISSUED_HEADER = "x-shop-canary-issued"
# The tester's headers (matcher.CANARY_HEADER and CANARY_SECRET_HEADER elsewhere).
CANARY_HEADER = "x-shop-canary"
CANARY_SECRET_HEADER = "x-shop-canary-secret"  # noqa: S105 - a header name
STATUS_TEXT = {301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect", 308: "Permanent Redirect"}
CANARY_COOKIE_MAX_AGE = 30 * 24 * 3600

TRACE_HEADER = "X-Amzn-Trace-Id"
TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=(1-[0-9a-f]{8}-[0-9a-f]{24})\s*(?:;|$)")

_table: dict | None = None


def load_table() -> dict:
    global _table
    if _table is None:
        _table = json.loads(ROUTES_FILE.read_text()) if ROUTES_FILE.exists() else {"routes": [], "origins": {}}
    return _table


def handler(event: dict, context=None, *, table: dict | None = None, now: float | None = None) -> dict:
    """The function's single entry point (`edge.lambda_edge.handler`)."""
    cf = event["Records"][0]["cf"]
    table = table if table is not None else load_table()
    now = time.time() if now is None else now
    event_type = cf["config"]["eventType"]
    if event_type == "viewer-request":
        return viewer_request(cf, table, now)
    if event_type == "origin-request":
        return origin_request(cf, table, now)
    if event_type == "origin-response":
        return origin_response(cf, table, now)
    return cf.get("response") or cf["request"]


def trace_header_mint(now: float, *, sampled: bool) -> str:
    """An X-Ray trace header: `Root=1-<epoch seconds, 8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1|0`."""
    return f"Root=1-{int(now):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled={int(sampled)}"


def trace_header_ensure(value: str, *, now: float, sample_rate: float, decide: bool = True) -> str:
    """The request's trace header, with Sampled=1 for `sample_rate` of requests.

    One with a well-formed Root keeps it, so a caller's own trace id still finds its requests,
    under the edge's Parent and the edge's sampling decision: a viewer's `Sampled=1` would
    otherwise have the origins trace, and store, every request it sends, a sale's stampede
    included. Without `decide` (origin-request, after viewer-request decided) it passes as it
    is. Any other is replaced by a new trace."""
    root = TRACE_ROOT.search(value or "")
    if root and not decide:
        return value
    sampled = random.random() < sample_rate  # sampling, not secrecy
    if root:
        return f"Root={root.group(1)};Parent={secrets.token_hex(8)};Sampled={int(sampled)}"
    return trace_header_mint(now, sampled=sampled)


def _trace(request: dict, table: dict, now: float, *, decide: bool) -> None:
    value = _header(request, TRACE_HEADER.lower())
    minted = trace_header_ensure(value, now=now, sample_rate=table.get("trace_sample_rate", 1.0), decide=decide)
    if minted != value:
        _set_header(request.setdefault("headers", {}), TRACE_HEADER, minted)


def _header(request: dict, name: str) -> str:
    values = request.get("headers", {}).get(name.lower()) or []
    return values[0]["value"] if values else ""


def _set_header(headers: dict, name: str, value: str) -> None:
    if name.lower().startswith(RESERVED_PREFIXES):
        raise ValueError(f"CloudFront answers 502 to a function that adds {name}")
    headers[name.lower()] = [{"key": name, "value": value}]


def _add_header(headers: dict, name: str, value: str) -> None:
    """Adds a value beside those the header has (Set-Cookie: the origin's own cookies stay)."""
    if name.lower().startswith(RESERVED_PREFIXES):
        raise ValueError(f"CloudFront answers 502 to a function that adds {name}")
    headers.setdefault(name.lower(), []).append({"key": name, "value": value})


def _decide(request: dict, table: dict, now: float) -> matcher.Decision:
    headers = request.get("headers", {})
    cookies = matcher.parse_cookie_header(v["value"] for v in headers.get("cookie", []))
    issued = _header(request, ISSUED_HEADER)
    if issued and not cookies.get(matcher.CANARY_COOKIE):
        cookies[matcher.CANARY_COOKIE] = issued
    flat = {name: values[0]["value"] for name, values in headers.items() if values}
    decision = matcher.decide(
        matcher.routes_from_table(table),
        request["uri"],
        now=now,
        cookies=cookies,
        headers=flat,
        default_origin=table.get("default_origin", matcher.DEFAULT_ORIGIN),
        canary_secret=table.get("canary_secret", ""),
        canary_header=CANARY_HEADER,
        canary_secret_header=CANARY_SECRET_HEADER,
    )
    if issued and decision.issued_canary_key is None:
        decision.issued_canary_key = issued
    return decision


def _redirect(decision: matcher.Decision) -> dict:
    status = decision.redirect_status or 302
    headers: dict = {}
    _set_header(headers, "Location", decision.redirect_url)
    _set_header(headers, ROUTE_HEADER, decision.route)
    _set_header(headers, "Cache-Control", "no-store")
    if decision.issued_canary_key:
        _set_header(headers, "Set-Cookie", canary_cookie(decision.issued_canary_key))
    return {"status": str(status), "statusDescription": STATUS_TEXT.get(status, "Redirect"), "headers": headers}


def _normalize(request: dict) -> dict:
    """A 308 to the request's normal form: the method and body are sent again unchanged."""
    location = matcher.normal_form(request["uri"])
    if request.get("querystring"):
        location += "?" + request["querystring"]
    return _redirect(matcher.Decision(matcher.NORMALIZE_ROUTE, None, location, 308))


def _refuse() -> dict:
    headers: dict = {}
    _set_header(headers, ROUTE_HEADER, matcher.NORMALIZE_ROUTE)
    _set_header(headers, "Content-Type", "application/json")
    _set_header(headers, "Cache-Control", "no-store")
    body = {"error": "invalid", "fields": {"path": "This spelling of the path cannot be routed; send it unescaped."}}
    return {"status": "400", "statusDescription": "Bad Request", "headers": headers, "body": json.dumps(body)}


def canary_cookie(key: str) -> str:
    return f"{matcher.CANARY_COOKIE}={key}; Path=/; Max-Age={CANARY_COOKIE_MAX_AGE}; SameSite=Lax; Secure"


def _has_origin_request(routes: list[matcher.Route], uri: str) -> bool:
    """Whether the behaviour CloudFront picks for `uri` runs the origin-request event, which
    is when its route may be passed over (`cloudfront.event_types`)."""
    name = matcher.first_pattern(routes, uri)
    return any(r.name == name and r.is_conditional for r in routes)


def viewer_request(cf: dict, table: dict, now: float) -> dict:
    request = cf["request"]
    headers = request.setdefault("headers", {})
    # What the events tell each other is theirs: a viewer cannot send it.
    headers.pop(ROUTE_HEADER.lower(), None)
    headers.pop(ISSUED_HEADER, None)
    _trace(request, table, now, decide=True)
    routes = matcher.routes_from_table(table)
    problem = matcher.spelling_problem(routes, request["uri"])
    if problem == "redirect":
        return _normalize(request)
    if problem == "refuse":
        return _refuse()
    decision = _decide(request, table, now)
    if decision.is_redirect:
        return _redirect(decision)
    if not _has_origin_request(routes, request["uri"]):
        # No origin-request event will take the canary secret off: the origin is not to see it.
        headers.pop(CANARY_SECRET_HEADER, None)
    if decision.issued_canary_key:
        # The origin-request event must decide with the same key.
        _set_header(request["headers"], ISSUED_HEADER, decision.issued_canary_key)
    return request


def origin_request(cf: dict, table: dict, now: float) -> dict:
    request = cf["request"]
    _trace(request, table, now, decide=False)
    decision = _decide(request, table, now)
    if decision.is_redirect:
        return _redirect(decision)
    # The secret proves a tester to the edge; the origins have no use for it.
    request["headers"].pop(CANARY_SECRET_HEADER, None)
    origin = table["origins"].get(decision.origin) if decision.origin else None
    if origin is not None:
        switch_origin(request, origin)
    _set_header(request["headers"], ROUTE_HEADER, decision.route)
    if decision.issued_canary_key:
        _set_header(request["headers"], ISSUED_HEADER, decision.issued_canary_key)
    return request


def switch_origin(request: dict, origin: dict) -> None:
    """Points the request at `origin` (CloudFront re-resolves the new domain)."""
    current = request.get("origin") or {}
    # One CloudFront already sends the request to is kept as it is: a function that rewrites
    # an S3 origin turns its origin access control off, and the private bucket answers 403.
    if not _targets(current, origin):
        request["origin"] = _origin_object(origin, current)
    # S3 has no default document: serve the directory's index.html (the workshop's rewrite).
    if origin["kind"] == "s3" and request["uri"].endswith("/"):
        request["uri"] += "index.html"
    if origin["kind"] != "web":
        # API Gateway and S3 answer only to their own Host.
        _set_header(request["headers"], "Host", origin["domain"])


def _origin_object(origin: dict, current: dict) -> dict:
    if origin["kind"] == "s3":
        return {
            "s3": {
                "domainName": origin["domain"],
                "path": origin.get("path", ""),
                "authMethod": "origin-access-identity",
                "region": origin.get("region", "us-east-1"),
                "customHeaders": {},
            }
        }
    # The distribution's origin headers (X-Origin-Verify) go with the request to whichever
    # custom origin it is switched to: the origins refuse requests without them.
    custom_headers = (current.get("custom") or current.get("s3") or {}).get("customHeaders") or {}
    return {
        "custom": {
            "domainName": origin["domain"],
            "port": origin["port"],
            "protocol": origin["protocol"],
            "path": origin.get("path", ""),
            "sslProtocols": ["TLSv1.2"],
            "readTimeout": 30,
            "keepaliveTimeout": 5,
            "customHeaders": custom_headers,
        }
    }


def _targets(current: dict, origin: dict) -> bool:
    """Whether the event's `origin` is already `origin` (its domain, port and path)."""
    target = current.get("s3" if origin["kind"] == "s3" else "custom") or {}
    same_port = origin["kind"] == "s3" or target.get("port") == origin["port"]
    same_path = target.get("path", "") == origin.get("path", "")
    return target.get("domainName") == origin["domain"] and same_port and same_path


def origin_response(cf: dict, table: dict, now: float) -> dict:
    request, response = cf["request"], cf["response"]
    # Behaviours that need no origin-request event (a plain route, the default) are
    # decided by CloudFront's path match alone, which the matcher reproduces.
    route = _header(request, ROUTE_HEADER) or _decide(request, table, now).route
    _set_header(response.setdefault("headers", {}), ROUTE_HEADER, route)
    issued = _header(request, ISSUED_HEADER)
    if issued:
        # Beside the origin's cookies (a page's csrftoken, a session), never instead of them.
        _add_header(response["headers"], "Set-Cookie", canary_cookie(issued))
    return response
