"""Drives each router with one case and reports what it decided, in one shape."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import io
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge import lambda_edge, matcher
from tests.edge.cases import Case

# CloudFront reserves X-Edge-*: there the route and tester headers are the Lambda's own.
CF_ROUTE_HEADER = lambda_edge.ROUTE_HEADER.lower()
CF_CANARY_HEADER = "X-Shop-Canary"
CF_CANARY_SECRET_HEADER = "X-Shop-Canary-Secret"

# CloudFront's developer guide, "Restrictions on all edge functions", Disallowed headers:
# not exposed to edge functions, and "if your function adds one of these headers, it fails
# CloudFront validation and CloudFront returns HTTP status code 502".
CLOUDFRONT_DISALLOWED = (
    "Connection",
    "Expect",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Trailer",
    "Upgrade",
    "X-Accel-Buffering",
    "X-Accel-Charset",
    "X-Accel-Limit-Rate",
    "X-Accel-Redirect",
    "X-Amz-Cf-*",
    "X-Amzn-Auth",
    "X-Amzn-Cf-Billing",
    "X-Amzn-Cf-Id",
    "X-Amzn-Cf-Xff",
    "X-Amzn-Errortype",
    "X-Amzn-Fle-Profile",
    "X-Amzn-Header-Count",
    "X-Amzn-Header-Order",
    "X-Amzn-Lambda-Integration-Tag",
    "X-Amzn-RequestId",
    "X-Cache",
    "X-Edge-*",
    "X-Forwarded-Proto",
    "X-Real-IP",
)


def cloudfront_disallows(name: str) -> bool:
    name = name.lower()
    for entry in (e.lower() for e in CLOUDFRONT_DISALLOWED):
        if name == entry or (entry.endswith("*") and name.startswith(entry[:-1])):
            return True
    return False


def _names(headers: dict) -> set[str]:
    """A CloudFront event's header names: the lower-case keys and each value's `key`."""
    return set(headers) | {v["key"] for values in headers.values() for v in values if "key" in v}


def headers_added(event: dict, result: dict) -> set[str]:
    """The names of the headers an edge function's `result` added to `event`'s request
    (or, for origin-response, response); all of a response it generated."""
    cf = event["Records"][0]["cf"]
    before = cf["response"] if cf["config"]["eventType"] == "origin-response" else cf["request"]
    after = result.get("headers", {})
    if "status" in result and "status" not in before:
        return _names(after)
    return {n for n in _names(after) if n.lower() not in {b.lower() for b in _names(before.get("headers", {}))}}


def cloudfront_validated(handler):
    """`handler` as CloudFront runs it: a result adding a disallowed header is a 502."""

    def run(event: dict, context=None) -> dict:
        given = copy.deepcopy(event)
        result = handler(event, context)
        bad = sorted(n for n in headers_added(given, result) if cloudfront_disallows(n))
        assert not bad, f"CloudFront answers 502: the function added {bad}"
        return result

    return run


@dataclass(frozen=True)
class Outcome:
    route: str
    origin: str | None = None
    redirect: tuple[int, str] | None = None


def expected(case: Case) -> Outcome:
    return Outcome(case.route, None if case.redirect else case.origin, case.redirect)


# --- CloudFront events -------------------------------------------------------------------


def cf_request(case: Case, origin_item: dict | None = None, *, extra: dict | None = None) -> dict:
    """The request of a CloudFront event for `case`, the tester using CloudFront's header
    names; `extra` headers the viewer sent too. As CloudFront does, headers it reserves
    (X-Edge-*) are removed before a function sees the request."""
    path, _, query = case.uri.partition("?")
    headers = {"host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]}
    if case.cookie:
        headers["cookie"] = [{"key": "Cookie", "value": f"sessionid=abc; {matcher.CANARY_COOKIE}={case.cookie}"}]
    if case.tester:
        headers[CF_CANARY_HEADER.lower()] = [{"key": CF_CANARY_HEADER, "value": case.tester}]
    if case.secret:
        headers[CF_CANARY_SECRET_HEADER.lower()] = [{"key": CF_CANARY_SECRET_HEADER, "value": case.secret}]
    for name, value in (extra or {}).items():
        if not cloudfront_disallows(name):
            headers[name.lower()] = [{"key": name, "value": value}]
    request = {"clientIp": "203.0.113.178", "method": "GET", "uri": path, "querystring": query, "headers": headers}
    if origin_item is not None:
        request["origin"] = origin_event(origin_item)
    return request


def origin_event(item: dict) -> dict:
    """The `origin` of a CloudFront event for one origin of a DistributionConfig."""
    if "S3OriginConfig" in item:
        return {"s3": {"domainName": item["DomainName"], "path": item.get("OriginPath", ""), "customHeaders": {}}}
    custom = item["CustomOriginConfig"]
    https = custom["OriginProtocolPolicy"] == "https-only"
    return {
        "custom": {
            "domainName": item["DomainName"],
            "port": custom["HTTPSPort"] if https else custom["HTTPPort"],
            "protocol": "https" if https else "http",
            "path": item.get("OriginPath", ""),
            "customHeaders": {},
        }
    }


def cf_event(event_type: str, request: dict, response: dict | None = None) -> dict:
    cf = {
        "config": {
            "distributionDomainName": "d111111abcdef8.cloudfront.net",
            "distributionId": "EDFDVBD6EXAMPLE",
            "eventType": event_type,
            "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
        },
        "request": request,
    }
    if response is not None:
        cf["response"] = response
    return {"Records": [{"cf": cf}]}


def _origin_name(request: dict, origins: dict) -> str:
    origin = request["origin"]
    domain = (origin.get("custom") or origin.get("s3"))["domainName"]
    port = origin["custom"]["port"] if "custom" in origin else None
    for name, o in origins.items():
        if o["domain"] == domain and (port is None or o["port"] == port):
            return name
    raise AssertionError(f"the request went to an unknown origin {origin}")


def _redirect(response: dict) -> Outcome:
    return Outcome(
        response["headers"][CF_ROUTE_HEADER][0]["value"],
        None,
        (int(response["status"]), response["headers"]["location"][0]["value"]),
    )


def followed(run, case: Case) -> Outcome:
    """Where a request ends: a 308 to its normal form (CloudFront matches paths as written)
    is followed once, as a browser would; the normal form is never sent there again."""
    outcome = run(case)
    if outcome.route == matcher.NORMALIZE_ROUTE:
        status, location = outcome.redirect
        assert status == 308 and matcher.normal_form(location) == location.split("?")[0], outcome
        again = run(dataclasses.replace(case, uri=location))
        assert again.route != matcher.NORMALIZE_ROUTE, again
        return again
    return outcome


def lambda_edge(handler, table: dict, case: Case) -> Outcome:
    handler = cloudfront_validated(handler)
    return followed(lambda c: _lambda_edge(handler, table, c), case)


def _lambda_edge(handler, table: dict, case: Case) -> Outcome:
    """The Lambda@Edge function on all three events of one request."""
    default = table["origins"][table["default_origin"]]
    start = {
        "Id": default["name"],
        "DomainName": default["domain"],
        "CustomOriginConfig": {"HTTPPort": default["port"], "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"},
    }
    request = cf_request(case, start)
    result = handler(cf_event("viewer-request", copy.deepcopy(request)), None)
    if "status" in result:
        return _redirect(result)
    result = handler(cf_event("origin-request", result), None)
    if "status" in result:
        return _redirect(result)
    origin = _origin_name(result, table["origins"])
    response = handler(cf_event("origin-response", result, {"status": "200", "statusDescription": "OK", "headers": {}}))
    return Outcome(response["headers"][CF_ROUTE_HEADER][0]["value"], origin)


def cloudfront(config: dict, handler, case: Case) -> Outcome:
    handler = cloudfront_validated(handler)
    return followed(lambda c: _cloudfront(config, handler, c), case)


def _cloudfront(config: dict, handler, case: Case) -> Outcome:
    """CloudFront as documented: the first behaviour whose PathPattern matches (in order, the
    default last) picks the origin; its Lambda@Edge associations then run on their events."""
    behaviours = config["CacheBehaviors"].get("Items", [])
    behaviour = next(
        (b for b in behaviours if matcher.pattern_matches(b["PathPattern"], case.uri)), config["DefaultCacheBehavior"]
    )
    events = {a["EventType"] for a in behaviour["LambdaFunctionAssociations"].get("Items", [])}
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    request = cf_request(case)
    if "viewer-request" in events:
        request = handler(cf_event("viewer-request", request), None)
        if "status" in request:
            return _redirect(request)
    request["origin"] = origin_event(origins[behaviour["TargetOriginId"]])
    origin = behaviour["TargetOriginId"]
    if "origin-request" in events:
        request = handler(cf_event("origin-request", request), None)
        if "status" in request:
            return _redirect(request)
        by_domain = {
            (o["DomainName"], origin_event(o).get("custom", {}).get("port")): name for name, o in origins.items()
        }
        target = request["origin"].get("custom") or request["origin"]["s3"]
        origin = by_domain.get((target["domainName"], target.get("port")))
    route = "(no X-Shop-Route)"
    if "origin-response" in events:
        response = handler(cf_event("origin-response", request, {"status": "200", "headers": {}}), None)
        route = response["headers"][CF_ROUTE_HEADER][0]["value"]
    return Outcome(route, origin)


def load_lambda_package(zip_bytes: bytes, where: Path):
    """Imports the handler from the exported zip, reading the routes baked into it."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(where)
    name = f"edge_package_{abs(hash(where))}"
    spec = importlib.util.spec_from_file_location(name, where / "edge" / "lambda_edge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    assert json.loads((where / "edge" / "routes.json").read_text())["routes"], "no routes were baked in"
    return module.handler
