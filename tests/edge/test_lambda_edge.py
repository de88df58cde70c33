"""The Lambda@Edge router, called with CloudFront event fixtures, from the exported zip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge import lambda_edge, matcher, selectors
from edge.exporters import lambda_package
from tests.edge.cases import CASES, OUT_30
from tests.edge.routers import cf_event, cf_request, expected, load_lambda_package
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
    assert response["headers"]["x-edge-route"][0]["value"] == ("canary" if inside else "default")


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
        return result["headers"]["x-edge-route"][0]["value"]

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
