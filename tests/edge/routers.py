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

from edge import matcher
from tests.edge.cases import Case

CANARY_HEADER = "X-Edge-Canary"
CANARY_SECRET_HEADER = "X-Edge-Canary-Secret"


@dataclass(frozen=True)
class Outcome:
    route: str
    origin: str | None = None
    redirect: tuple[int, str] | None = None


def expected(case: Case) -> Outcome:
    return Outcome(case.route, None if case.redirect else case.origin, case.redirect)


# --- CloudFront events -------------------------------------------------------------------


def cf_request(case: Case, origin_item: dict | None = None) -> dict:
    path, _, query = case.uri.partition("?")
    headers = {"host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]}
    if case.cookie:
        headers["cookie"] = [{"key": "Cookie", "value": f"sessionid=abc; {matcher.CANARY_COOKIE}={case.cookie}"}]
    if case.tester:
        headers["x-edge-canary"] = [{"key": CANARY_HEADER, "value": case.tester}]
    if case.secret:
        headers["x-edge-canary-secret"] = [{"key": CANARY_SECRET_HEADER, "value": case.secret}]
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
        response["headers"]["x-edge-route"][0]["value"],
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
    return Outcome(response["headers"]["x-edge-route"][0]["value"], origin)


def cloudfront(config: dict, handler, case: Case) -> Outcome:
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
    route = "(no X-Edge-Route)"
    if "origin-response" in events:
        response = handler(cf_event("origin-response", request, {"status": "200", "headers": {}}), None)
        route = response["headers"]["x-edge-route"][0]["value"]
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
