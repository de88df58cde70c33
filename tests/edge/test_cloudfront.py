"""The exported CloudFront DistributionConfig, and a CloudFront simulation that routes the
shared cases with it.

The simulation selects the behaviour as CloudFront documents (PathPattern in order, first
match, default last) and sends the request to its TargetOriginId. Where the behaviour has
Lambda@Edge associations (windows, canaries, redirects, X-Shop-Route), it runs the
exported function on those events, as CloudFront would; nothing else decides.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from edge.exporters import cloudfront
from tests.edge.cases import CASES, Case
from tests.edge.routers import cf_event, cf_request, expected, load_lambda_package, origin_event
from tests.edge.routers import cloudfront as simulate


@pytest.fixture(scope="module")
def exported(shared_export, tmp_path_factory):
    _, out = shared_export
    config = json.loads((out / "cloudfront-distribution-config.json").read_text())
    handler = load_lambda_package((out / "lambda-edge.zip").read_bytes(), tmp_path_factory.mktemp("package"))
    return config, handler


def test_edge_export_all_writes_every_artefact(edge_routes, tmp_path):
    call_command("edge_export", "--target", "all", "--out", str(tmp_path))
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert {
        "cloudfront-distribution-config.json",
        "lambda-edge.zip",
        "routes.json",
        "cloudformation.json",
        "nginx-edge.conf",
    } <= names


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cloudfront_simulation_decides_each_shared_case(exported, case):
    config, handler = exported
    assert simulate(config, handler, case) == expected(case), case.why


def test_one_ordered_behaviour_per_enabled_route_with_the_managed_policies(exported):
    config, _ = exported
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]["Items"]}
    assert config["CacheBehaviors"]["Quantity"] == 24, "25 routes, one disabled"
    assert list(behaviours)[:2] == ["/shop/rods/muskie-casting-rod/*", "/legacy-api/*"]
    assert "t/noslash/*" in behaviours, "patterns are exported as written"
    muskie = behaviours["/shop/rods/muskie-casting-rod/*"]
    assert muskie["TargetOriginId"] == "hotpath"
    assert muskie["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert muskie["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHostHeader
    assert "POST" in muskie["AllowedMethods"]["Items"]
    site = behaviours["/t/site/*"]
    assert site["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"  # CachingOptimized
    assert "OriginRequestPolicyId" not in site
    default = config["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "monolith"
    assert default["OriginRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"  # AllViewer
    # What behaviours cannot express is associated with the Lambda@Edge router.
    events = {
        p: [a["EventType"] for a in b["LambdaFunctionAssociations"].get("Items", [])] for p, b in behaviours.items()
    }
    # viewer-request everywhere: a path spelt otherwise is sent to its normal form first.
    assert events["/shop/rods/muskie-casting-rod/*"] == ["viewer-request", "origin-response"]
    assert events["/t/canary/*"] == ["viewer-request", "origin-request", "origin-response"]
    assert events["/t/old/*"] == ["viewer-request", "origin-response"]
    assert events["/t/site/*"] == ["viewer-request", "origin-request", "origin-response"], "S3's index.html"
    default_events = [a["EventType"] for a in default["LambdaFunctionAssociations"]["Items"]]
    assert default_events == ["viewer-request", "origin-response"]
    for origin in config["Origins"]["Items"]:
        assert origin["CustomHeaders"] == {"Quantity": 0}, "no EDGE_ORIGIN_SECRET in the tests' settings"
    assert all(
        a["LambdaFunctionARN"].split(":")[-1].isdigit()
        for b in behaviours.values()
        for a in b["LambdaFunctionAssociations"].get("Items", [])
    ), "a version ARN"


def test_a_minisite_directory_gets_its_index_from_the_origin_cloudfront_signs(exported):
    """S3 has no default document, and a function that rewrites an S3 origin turns its origin
    access control off: a plain route to the mini-site asks the bucket for the directory's
    index.html, through the very origin CloudFront picked (and signs for)."""
    config, handler = exported
    behaviour = next(b for b in config["CacheBehaviors"]["Items"] if b["PathPattern"] == "/t/site/*")
    events = [a["EventType"] for a in behaviour["LambdaFunctionAssociations"]["Items"]]
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    request = handler(cf_event("viewer-request", cf_request(Case("/t/site/page/", "site"))), None)
    request["origin"] = origin_event(origins[behaviour["TargetOriginId"]])
    request["origin"]["s3"].update(authMethod="none", region="us-east-1")
    picked = json.loads(json.dumps(request["origin"]))
    if "origin-request" in events:
        request = handler(cf_event("origin-request", request), None)
    assert request["uri"] == "/t/site/page/index.html"
    assert request["origin"] == picked


def test_the_config_has_the_fields_boto3_requires(exported):
    config, _ = exported
    for key in ("CallerReference", "Origins", "DefaultCacheBehavior", "Comment", "Enabled"):
        assert key in config
    origins = {o["Id"]: o for o in config["Origins"]["Items"]}
    assert set(origins) == {"monolith", "hotpath", "legacy-api", "minisite"}
    assert origins["minisite"]["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert origins["hotpath"]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"


def test_an_origin_s_5xx_is_kept_at_the_edge_for_a_second_not_cloudfront_s_ten(exported):
    # Unset, CloudFront keeps a 503 to a GET for 10 s whatever its Cache-Control says: a buyer
    # polling their order after the Retry-After would get the same 503 again.
    config, _ = exported
    errors = config["CustomErrorResponses"]
    assert errors["Quantity"] == len(errors["Items"])
    assert {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in errors["Items"]} == {500: 1, 502: 1, 503: 1, 504: 1}


def test_the_managed_policy_ids_are_the_documented_ones():
    assert cloudfront.CACHING_DISABLED == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert cloudfront.CACHING_OPTIMIZED == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert cloudfront.ALL_VIEWER == "216adef6-5c7f-47e4-b989-5492eafa07d3"
    assert cloudfront.ALL_VIEWER_EXCEPT_HOST_HEADER == "b689b0a8-53d0-40ab-baf2-68738e2966ac"


TWINS = {
    "default_origin": "monolith",
    "origins": {
        "monolith": {"name": "monolith", "kind": "web", "domain": "shop.example.com", "port": 443, "protocol": "https"},
        "hotpath": {
            "name": "hotpath",
            "kind": "api-gateway",
            "domain": "hotpath.execute-api.us-east-1.amazonaws.com",
            "port": 443,
            "protocol": "https",
        },
    },
    # The README's example: a route and its canary twin, one pattern.
    "routes": [
        {
            "name": "muskie-canary",
            "pattern": "/shop/rods/muskie-casting-rod/*",
            "origin": "hotpath",
            "canary_percent": 10,
        },
        {"name": "muskie", "pattern": "/shop/rods/muskie-casting-rod/*", "origin": "monolith"},
        {"name": "reels", "pattern": "/shop/reels/*", "origin": "hotpath"},
    ],
}


def test_routes_sharing_a_pattern_export_one_behaviour_on_which_the_router_picks():
    """CloudFront refuses two behaviours of one path pattern, and would only ever use the
    first: the pattern gets the first route's behaviour, and the router decides on it."""
    behaviours = cloudfront.distribution_config(TWINS)["CacheBehaviors"]["Items"]
    assert [b["PathPattern"] for b in behaviours] == ["/shop/rods/muskie-casting-rod/*", "/shop/reels/*"]
    twins = behaviours[0]
    assert twins["TargetOriginId"] == "hotpath"
    events = {a["EventType"] for a in twins["LambdaFunctionAssociations"]["Items"]}
    assert "origin-request" in events, "the router picks the twin's origin when the canary passes"


def test_patterns_that_differ_only_by_the_leading_slash_are_one_behaviour():
    """CloudFront reads a pattern with or without its leading slash the same: `shop/reels/*`
    beside `/shop/reels/*` was a second behaviour of one path pattern, which it refuses."""
    table = {
        **TWINS,
        "routes": [*TWINS["routes"], {"name": "reels-2", "pattern": "shop/reels/*", "origin": "monolith"}],
    }
    behaviours = cloudfront.distribution_config(table)["CacheBehaviors"]["Items"]
    assert [b["PathPattern"] for b in behaviours] == ["/shop/rods/muskie-casting-rod/*", "/shop/reels/*"]
