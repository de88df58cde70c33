"""The matcher's own rules: validation of patterns, covering, the canary hash."""

from __future__ import annotations

import pytest

from edge import matcher


@pytest.mark.parametrize(
    "pattern",
    ["/shop/rods/muskie-casting-rod/*", "shop/*", "*.jpg", "/a$b~c'd@e:f+g&h_i-j.k", '/q"uote', "/x/??/*", "*"],
)
def test_patterns_cloudfront_accepts(pattern):
    assert matcher.pattern_errors(pattern) == []


@pytest.mark.parametrize("pattern", ["/a b", "/a%20b", "/a#b", "/a\\b", "/é", "/a<b>", "/a[1]", "/a,b", "/a;b", "/a=b"])
def test_patterns_cloudfront_refuses_name_the_characters(pattern):
    (error,) = matcher.pattern_errors(pattern)
    assert "characters CloudFront does not accept" in error


def test_patterns_longer_than_255_characters_are_refused():
    assert matcher.pattern_errors("/" + "a" * 254) == []
    assert "at most 255" in matcher.pattern_errors("/" + "a" * 255)[0]


@pytest.mark.parametrize(
    ("general", "specific", "covers"),
    [
        ("/shop/*", "/shop/rods/*", True),
        ("/shop/rods/*", "/shop/*", False),
        ("*", "/anything/at/all", True),
        ("/t/?/x", "/t/a/x", True),
        ("/t/a/x", "/t/?/x", False),
        ("*.jpg", "/img/*.jpg", True),
        ("*.jpg", "/img/*", False),
        ("shop/*", "/shop/x", True),
    ],
)
def test_covering_patterns_are_detected(general, specific, covers):
    assert matcher.pattern_covers(general, specific) is covers


def test_murmur_hash2_is_nginxs():
    # Values nginx's split_clients agrees with (see the nginx tests for the live check).
    assert matcher.murmur_hash2(b"") == 0
    assert matcher.in_canary(30, "buyer-3") and not matcher.in_canary(30, "buyer-26")
    assert matcher.canary_threshold(50) == 0xFFFFFFFF // 2


def test_the_decision_explains_every_route_it_passed_over():
    routes = [
        matcher.Route("off", "/a/*", "hotpath", enabled=False),
        matcher.Route("later", "/a/*", "hotpath", window_start=2000),
        matcher.Route("a", "/a/*", "legacy-api"),
    ]
    decision = matcher.decide(routes, "/a/x?y=1", now=1000)
    assert (decision.route, decision.origin) == ("a", "legacy-api")
    assert [why for _, why in decision.trace] == [
        "disabled",
        "pattern matches, but the sale window is closed",
        "pattern matches: first match wins",
    ]


def test_the_tester_headers_names_can_be_given():
    """The Lambda@Edge router passes its own names (CloudFront reserves X-Edge-*)."""
    routes = [matcher.Route(name="canary", pattern="/c/*", origin="hotpath", canary_percent=0)]
    default = {"x-edge-canary": "in", "x-edge-canary-secret": "s3cret"}
    own = {"x-shop-canary": "in", "x-shop-canary-secret": "s3cret"}
    names = {"canary_header": "x-shop-canary", "canary_secret_header": "x-shop-canary-secret"}
    assert matcher.decide(routes, "/c/a", now=0, headers=default, canary_secret="s3cret").route == "canary"
    assert matcher.decide(routes, "/c/a", now=0, headers=own, canary_secret="s3cret").route == "default"
    decision = matcher.decide(routes, "/c/a", now=0, headers=own, canary_secret="s3cret", **names)
    assert decision.route == "canary" and "tester header x-shop-canary: in" in decision.trace[0][1]
    assert matcher.decide(routes, "/c/a", now=0, headers=default, canary_secret="s3cret", **names).route == "default"
    assert matcher.canary_tester(own, "s3cret", header="x-shop-canary", secret_header="x-shop-canary-secret") == "in"
