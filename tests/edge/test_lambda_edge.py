"""The Lambda@Edge router, called with CloudFront event fixtures, from the exported zip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge import lambda_edge, matcher, selectors
from edge.exporters import lambda_package
from tests.edge.cases import CASES, OUT_30
from tests.edge.routers import (
    CLOUDFRONT_DISALLOWED,
    cf_event,
    cf_request,
    cloudfront_disallows,
    expected,
    headers_added,
    load_lambda_package,
)
from tests.edge.routers import lambda_edge as run_lambda

EDGE_DIR = Path(lambda_edge.__file__).parent


@pytest.fixture(scope="module")
def packaged(shared_export, tmp_path_factory):
    table, out = shared_export
    return table, load_lambda_package((out / "lambda-edge.zip").read_bytes(), tmp_path_factory.mktemp("package"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lambda_edge_decides_each_shared_case(packaged, case):
    table, handler = packaged
    assert run_lambda(handler, table, case) == expected(case), case.why


def test_the_package_holds_the_matcher_and_handler_unchanged_and_the_routes(edge_routes, tmp_path):
    import io
    import zipfile

    table = selectors.route_table()
    archive = zipfile.ZipFile(io.BytesIO(lambda_package.build_zip(table)))
    assert archive.read("edge/matcher.py") == (EDGE_DIR / "matcher.py").read_bytes()
    assert archive.read("edge/lambda_edge.py") == (EDGE_DIR / "lambda_edge.py").read_bytes()
    baked = json.loads(archive.read("edge/routes.json"))
    assert [r["name"] for r in baked["routes"]][:3] == ["muskie", "legacy", "jpg"]
    assert "off" not in [r["name"] for r in baked["routes"]], "disabled routes are not exported"
    # The tester's headers the table records are the ones the function reads (not X-Edge-*,
    # which CloudFront keeps for itself).
    assert (baked["canary_header"], baked["canary_secret_header"]) == ("x-shop-canary", "x-shop-canary-secret")
    # The same routes give the same bytes: a deploy with nothing changed publishes nothing.
    assert lambda_package.build_zip(table) == lambda_package.build_zip(table)


def test_the_edge_modules_import_nothing_from_django():
    import subprocess
    import sys

    check = (
        "import sys, edge.lambda_edge, edge.matcher; "
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'django']; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", check], cwd=EDGE_DIR.parent, check=True, env={"PATH": "/usr/bin:/bin"})


def test_origin_request_switches_to_the_api_gateway_origin_with_its_host(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    request = cf_request(Case("/shop/rods/muskie-casting-rod/orders", "muskie"))
    result = handler(cf_event("origin-request", request), None)
    hotpath = table["origins"]["hotpath"]
    assert result["origin"]["custom"]["domainName"] == hotpath["domain"]
    assert result["origin"]["custom"]["protocol"] == "https" and result["origin"]["custom"]["port"] == 443
    assert result["headers"]["host"] == [{"key": "Host", "value": hotpath["domain"]}]


def test_origin_request_to_s3_serves_the_directory_index(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    result = handler(cf_event("origin-request", cf_request(Case("/t/site/page/", "site"))), None)
    assert result["origin"]["s3"]["domainName"] == table["origins"]["minisite"]["domain"]
    assert result["uri"] == "/t/site/page/index.html"


def test_a_new_buyer_gets_the_canary_cookie_the_decision_used(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    request = handler(cf_event("viewer-request", cf_request(Case("/t/canary/a", "?"))), None)
    request = handler(cf_event("origin-request", request), None)
    response = handler(cf_event("origin-response", request, {"status": "200", "headers": {}}), None)
    cookie = response["headers"]["set-cookie"][0]["value"]
    key = cookie.split(";")[0].split("=", 1)[1]
    inside = matcher.in_canary(30, key)
    assert response["headers"]["x-shop-route"][0]["value"] == ("canary" if inside else "default")


def test_a_new_buyer_keeps_the_cookies_the_origin_set_beside_the_canary_cookie(packaged, db, client):
    """CloudFront gives origin-response the origin's Set-Cookie headers as one list: the canary
    cookie joins them. Replacing them lost a new buyer's csrftoken, and the page's first form
    post was refused."""
    table, handler = packaged
    from tests.edge.cases import Case

    page = client.get("/accounts/login/")
    sent = [{"key": "Set-Cookie", "value": morsel.OutputString()} for morsel in page.cookies.values()]
    assert any(v["value"].startswith("csrftoken=") for v in sent), "the origin's page sets its CSRF cookie"
    request = handler(cf_event("viewer-request", cf_request(Case("/t/canary/a", "?"))), None)
    request = handler(cf_event("origin-request", request), None)
    origin = {"status": "200", "statusDescription": "OK", "headers": {"set-cookie": list(sent)}}
    response = handler(cf_event("origin-response", request, origin), None)
    cookies = response["headers"]["set-cookie"]
    assert cookies[: len(sent)] == sent
    assert [c["value"].split("=", 1)[0] for c in cookies[len(sent) :]] == [matcher.CANARY_COOKIE]


def test_a_returning_buyer_gets_no_new_cookie(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    request = handler(cf_event("origin-request", cf_request(Case("/t/canary/a", "?", cookie=OUT_30))), None)
    response = handler(cf_event("origin-response", request, {"status": "200", "headers": {}}), None)
    assert "set-cookie" not in response["headers"]


def test_a_sale_window_opens_and_closes_at_its_times(packaged):
    table, _ = packaged
    route = next(r for r in table["routes"] if r["name"] == "win-future")
    from tests.edge.cases import Case

    def route_at(moment):
        event = cf_event("origin-request", cf_request(Case("/t/win/future/a", "?")))
        result = lambda_edge.handler(event, None, table=table, now=moment)
        return result["headers"]["x-shop-route"][0]["value"]

    assert route_at(route["window_start"] - 1) == "win-catch"
    assert route_at(route["window_start"]) == "win-future"
    assert route_at(route["window_end"] - 0.5) == "win-future"
    assert route_at(route["window_end"]) == "win-catch"
    assert route_at(time.time()) == "win-catch"


def test_a_redirect_from_viewer_request_is_a_cloudfront_generated_response(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    response = handler(cf_event("viewer-request", cf_request(Case("/t/old/x", "?"))), None)
    assert response["status"] == "301" and response["statusDescription"] == "Moved Permanently"
    assert response["headers"]["location"] == [{"key": "Location", "value": "https://shop.example.com/new/"}]


# --- CloudFront's reserved headers ---------------------------------------------------------


def test_the_reserved_prefixes_are_cloudfronts():
    assert "X-Edge-*" in CLOUDFRONT_DISALLOWED and "X-Amz-Cf-*" in CLOUDFRONT_DISALLOWED
    assert {p.lower() + "*" for p in lambda_edge.RESERVED_PREFIXES} <= {h.lower() for h in CLOUDFRONT_DISALLOWED}
    # The names every other router uses would be refused: that is why the Lambda has its own.
    for name in ("X-Edge-Route", "x-edge-canary-issued", matcher.CANARY_HEADER, matcher.CANARY_SECRET_HEADER):
        assert cloudfront_disallows(name)
    for name in (
        lambda_edge.ROUTE_HEADER,
        lambda_edge.ISSUED_HEADER,
        lambda_edge.CANARY_HEADER,
        lambda_edge.CANARY_SECRET_HEADER,
    ):
        assert not cloudfront_disallows(name), name
    assert lambda_edge.ROUTE_HEADER == "X-Shop-Route"


def test_the_function_never_adds_a_header_cloudfront_disallows(packaged):
    """Every shared case, on every event: a disallowed header would be CloudFront's 502."""
    table, handler = packaged
    added: set[str] = set()

    def recording(event, context=None):
        import copy

        given = copy.deepcopy(event)
        result = handler(event, context)
        added.update(headers_added(given, result))
        return result

    for case in CASES:
        run_lambda(recording, table, case)
    assert not sorted(name for name in added if cloudfront_disallows(name))
    # Not vacuous: the route, the cookie, the redirects' and the events' own headers were seen.
    assert {"X-Shop-Route", "Set-Cookie", "Location", "x-shop-canary-issued"} <= added


def test_setting_a_reserved_header_fails_loudly():
    with pytest.raises(ValueError, match="502"):
        lambda_edge._set_header({}, "X-Edge-Route", "muskie")


def test_the_route_header_a_viewer_sends_is_not_believed(packaged):
    table, handler = packaged
    from tests.edge.cases import Case

    request = cf_request(Case("/shop/", "?"), extra={"X-Shop-Route": "muskie", "X-Shop-Canary-Issued": "buyer-3"})
    request = handler(cf_event("viewer-request", request), None)
    assert "x-shop-route" not in request["headers"] and "x-shop-canary-issued" not in request["headers"]
    response = handler(cf_event("origin-response", request, {"status": "200", "headers": {}}), None)
    assert response["headers"]["x-shop-route"] == [{"key": "X-Shop-Route", "value": "default"}]
    assert "set-cookie" not in response["headers"]


def test_the_canary_secret_reaches_no_origin(packaged):
    """Behaviours without an origin-request event lose it on viewer-request; the others on
    origin-request, after deciding with it."""
    table, handler = packaged
    from tests.edge.cases import CANARY_SECRET, Case

    def viewer_request(uri):
        return handler(cf_event("viewer-request", cf_request(Case(uri, "?", tester="in", secret=CANARY_SECRET))))

    assert "x-shop-canary-secret" not in viewer_request("/shop/")["headers"]
    canary = viewer_request("/t/canary/a")
    assert "x-shop-canary-secret" in canary["headers"], "the origin-request event decides with it"
    sent = handler(cf_event("origin-request", canary))
    assert "x-shop-canary-secret" not in sent["headers"]
    assert sent["headers"]["x-shop-route"][0]["value"] == "canary"


def test_on_cloudfront_the_tester_uses_the_x_shop_headers(packaged):
    """CloudFront removes X-Edge-* before a function sees the request: the old names do nothing."""
    table, handler = packaged
    from tests.edge.cases import CANARY_SECRET, OUT_30, Case

    def route(request):
        return handler(cf_event("origin-request", request))["headers"]["x-shop-route"][0]["value"]

    old = cf_request(
        Case("/t/canary/a", "?", cookie=OUT_30),
        extra={"X-Edge-Canary": "in", "X-Edge-Canary-Secret": CANARY_SECRET},
    )
    assert route(old) == "default"
    assert route(cf_request(Case("/t/canary/a", "?", cookie=OUT_30, tester="in", secret=CANARY_SECRET))) == "canary"
