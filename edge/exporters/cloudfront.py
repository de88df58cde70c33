"""The route table as a CloudFront `DistributionConfig` in boto3's shape.

One ordered cache behaviour per path pattern of the enabled routes, in route order (CloudFront
evaluates them in that order, first match wins, the default behaviour last). CloudFront takes
one behaviour per path pattern: routes sharing one (a route and its canary twin) get the first
one's, on which the Lambda@Edge router, holding every route, picks among them. What behaviours cannot
express (sale windows, canaries, falling through to a later route, redirects) is done by
the Lambda@Edge router associated with the behaviours that need it. Every behaviour runs
it on viewer-request: CloudFront picks the behaviour from the path as written, so a path
spelt otherwise than the origins resolve it (`%2D`, `/../`) is sent to its normal form.

Every origin gets the secret header `X-Origin-Verify` (EDGE_ORIGIN_SECRET): the origins
refuse requests without it, so their own domains cannot be used to go round the routes.
"""

from __future__ import annotations

from edge import matcher

# AWS managed policies (IDs from CloudFront's documentation).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

PLACEHOLDER_LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:shop-edge-router:1"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
READ_METHODS = ["GET", "HEAD"]
ORIGIN_SECRET_HEADER = "X-Origin-Verify"  # noqa: S105 - a header name


# CloudFront keeps an origin's 500, 502, 503 or 504 to a GET for its error caching minimum
# TTL, 10 s unless set, whatever its Cache-Control says (no-store is heeded for 404, 410, 414
# and 501 only). The origins' 503s say Retry-After: 2 to 5 s; a buyer who waits that long and
# polls their order again would be given the same 503 for the rest of the 10 s. One second
# still answers a burst of the same GET from the edge. edge_deploy sets this when it creates
# the distribution; after that, error pages are the platform's (edge.deploy.MANAGED_KEYS).
BRIEFLY_CACHED_ERRORS = (500, 502, 503, 504)


def _items(items: list) -> dict:
    return {"Quantity": len(items), "Items": items} if items else {"Quantity": 0}


def origin_headers(origin_secret) -> list[dict]:
    return [{"HeaderName": ORIGIN_SECRET_HEADER, "HeaderValue": origin_secret}] if origin_secret else []


def origin_item(origin: dict, *, oac_id: str = "", origin_secret: str = "") -> dict:
    item = {
        "Id": origin["name"],
        "DomainName": origin["domain"],
        "OriginPath": origin.get("path", ""),
        "CustomHeaders": _items(origin_headers(origin_secret)),
        "ConnectionAttempts": 3,
        "ConnectionTimeout": 10,
    }
    if origin["kind"] == "s3":
        item["S3OriginConfig"] = {"OriginAccessIdentity": ""}
        if oac_id:
            item["OriginAccessControlId"] = oac_id
    else:
        https = origin["protocol"] == "https"
        item["CustomOriginConfig"] = {
            "HTTPPort": 80 if https else origin["port"],
            "HTTPSPort": origin["port"] if https else 443,
            "OriginProtocolPolicy": "https-only" if https else "http-only",
            "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
            "OriginReadTimeout": 30,
            "OriginKeepaliveTimeout": 5,
        }
    return item


def policies(origin: dict | None, *, dynamic: bool) -> dict:
    """Managed cache and origin-request policies that fit an origin.

    A behaviour whose routing is decided per request (window, canary, redirect) is never
    cached and forwards every cookie, so the Lambda@Edge router sees the canary cookie.
    """
    if dynamic or origin is None:
        return {"CachePolicyId": CACHING_DISABLED, "OriginRequestPolicyId": ALL_VIEWER}
    if origin["kind"] == "s3":
        return {"CachePolicyId": CACHING_OPTIMIZED}
    if origin["kind"] == "api-gateway":
        # Forwarding the viewer's Host would break API Gateway.
        return {"CachePolicyId": CACHING_DISABLED, "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST_HEADER}
    return {"CachePolicyId": CACHING_DISABLED, "OriginRequestPolicyId": ALL_VIEWER}


def event_types(routes: list[matcher.Route], index: int, origins: dict | None = None) -> list[str]:
    """The Lambda@Edge events the behaviour of `routes[index]` needs.

    viewer-request (normal forms, redirects) and origin-response (X-Edge-Route) always;
    origin-request when the route may be passed over (the router then picks the origin of
    the route that applies), or when it sends to S3, which has no default document (the
    router asks for a directory's index.html).
    """
    route = routes[index]
    types = ["viewer-request"]
    to_s3 = (origins or {}).get(route.origin or "", {}).get("kind") == "s3"
    if route.is_conditional or to_s3:
        types.append("origin-request")
    types.append("origin-response")
    return types


def _associations(types: list[str], lambda_arn: str) -> dict:
    return _items([{"LambdaFunctionARN": lambda_arn, "EventType": t, "IncludeBody": False} for t in types])


def behaviour(table: dict, routes: list[matcher.Route], index: int, lambda_arn: str) -> dict:
    route = routes[index]
    origin = table["origins"].get(route.origin) if route.origin else None
    target = route.origin if origin is not None else table["default_origin"]
    dynamic = route.is_conditional or route.is_redirect
    methods = READ_METHODS if (origin and origin["kind"] == "s3" and not dynamic) else ALL_METHODS
    return {
        "PathPattern": route.pattern,
        "TargetOriginId": target,
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {
            "Quantity": len(methods),
            "Items": methods,
            "CachedMethods": {"Quantity": 2, "Items": READ_METHODS},
        },
        "SmoothStreaming": False,
        "Compress": True,
        "LambdaFunctionAssociations": _associations(event_types(routes, index, table["origins"]), lambda_arn),
        "FunctionAssociations": {"Quantity": 0},
        "FieldLevelEncryptionId": "",
        **policies(origin, dynamic=dynamic),
    }


def _first_of_each_pattern(routes: list[matcher.Route]) -> list[int]:
    """Indexes of the routes whose pattern no earlier route has, the leading slash aside
    (CloudFront reads `a/*` as `/a/*`, as the matcher does). A later route of the same
    pattern is reached only when the first is passed over (window, canary), which makes the
    first conditional: its behaviour runs the router on origin-request, and the router decides."""
    seen: set[str] = set()
    firsts = []
    for index, route in enumerate(routes):
        pattern = matcher.normalize_pattern(route.pattern)
        if pattern not in seen:
            seen.add(pattern)
            firsts.append(index)
    return firsts


def distribution_config(
    table: dict,
    *,
    lambda_arn: str = PLACEHOLDER_LAMBDA_ARN,
    caller_reference: str = "shop-edge",
    comment: str = "shop edge (managed by edge_deploy)",
    oac_id: str = "",
    origin_secret: str = "",
) -> dict:
    routes = matcher.routes_from_table(table)
    default_origin = table["origins"].get(table["default_origin"]) or {"kind": "web"}
    origins = [origin_item(o, oac_id=oac_id, origin_secret=origin_secret) for o in table["origins"].values()]
    default = behaviour(
        table,
        [matcher.Route(name=matcher.DEFAULT_ROUTE, pattern="*", origin=table["default_origin"])],
        0,
        lambda_arn,
    )
    default.pop("PathPattern")
    default.update(policies(default_origin, dynamic=False))
    return {
        "CallerReference": caller_reference,
        "Aliases": {"Quantity": 0},
        "DefaultRootObject": "",
        "Origins": _items(origins),
        "OriginGroups": {"Quantity": 0},
        "DefaultCacheBehavior": default,
        "CacheBehaviors": _items([behaviour(table, routes, i, lambda_arn) for i in _first_of_each_pattern(routes)]),
        "CustomErrorResponses": _items([{"ErrorCode": c, "ErrorCachingMinTTL": 1} for c in BRIEFLY_CACHED_ERRORS]),
        "Comment": comment,
        "PriceClass": "PriceClass_100",
        "Enabled": True,
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1.2_2021"},
        "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
    }
