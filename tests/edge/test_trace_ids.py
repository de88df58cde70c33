"""The edge starts the trace: each of the four routers (Lambda@Edge, CloudFront with it,
nginx, the development middleware) keeps a well-formed X-Amzn-Trace-Id's Root, mints one, with
the current epoch, when none or a malformed one came in, and decides the sampling itself."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from edge import lambda_edge, selectors
from edge.middleware import EdgeRouterMiddleware
from tests.edge.cases import MINTED_TRACE, TRACE_CASES
from tests.edge.routers import cf_event, load_lambda_package
from tests.edge.test_nginx import export_to

URI = "/shop/rods/muskie-casting-rod/orders"


def assert_traced(sent: str | None, seen: str, outcome: str, *, sampled: str | None = None) -> None:
    if outcome == "passed":
        assert seen == sent
        return
    if outcome == "kept":
        root = re.search(r"(?:^|;)Root=(1-[0-9a-f]{8}-[0-9a-f]{24})", sent).group(1)
        match = re.match(rf"^Root={root};Parent=[0-9a-f]{{16}};Sampled=([01])$", seen)
        assert match, f"{sent!r} came out as {seen!r}"
        assert sampled is None or match.group(1) == sampled, seen
        return
    match = re.match(MINTED_TRACE, seen)
    assert match, f"not a well-formed X-Ray header: {seen!r}"
    # The first 8 hex digits are the epoch seconds of the request (give or take the test's own pace).
    assert abs(int(match.group(1), 16) - time.time()) <= 5, seen
    if sampled is not None:
        assert match.group(2) == sampled, seen


def cf_request_with(header: str | None) -> dict:
    headers = {"host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]}
    if header is not None:
        headers["x-amzn-trace-id"] = [{"key": "X-Amzn-Trace-Id", "value": header}]
    return {"clientIp": "203.0.113.178", "method": "GET", "uri": URI, "querystring": "", "headers": headers}


def seen_by_lambda(handler, header, event_type: str) -> str:
    request = handler(cf_event(event_type, cf_request_with(header)), None)
    return request["headers"]["x-amzn-trace-id"][0]["value"]


@pytest.fixture
def packaged(edge_routes, tmp_path):
    with override_settings(TRACING_ENABLED=True, TRACING_SAMPLE_RATE=1.0):
        call_command("edge_export", "--target", "lambda-edge", "--out", str(tmp_path / "out"))
    return load_lambda_package((tmp_path / "out" / "lambda-edge.zip").read_bytes(), tmp_path / "package")


@pytest.mark.parametrize(("header", "outcome"), TRACE_CASES)
def test_lambda_edge_origin_request_passes_or_mints_the_trace_header(packaged, header, outcome):
    # After viewer-request decided: a well-formed header goes on as it is.
    outcome = "passed" if outcome == "kept" else outcome
    assert_traced(header, seen_by_lambda(packaged, header, "origin-request"), outcome, sampled="1")


@pytest.mark.parametrize(("header", "outcome"), TRACE_CASES)
def test_cloudfront_viewer_request_on_every_behaviour_keeps_or_mints_it(packaged, header, outcome):
    # viewer-request runs on every behaviour, the default's included: no request reaches an
    # origin without the header; origin-request then passes on what viewer-request minted.
    minted = seen_by_lambda(packaged, header, "viewer-request")
    assert_traced(header, minted, outcome, sampled="1")
    assert seen_by_lambda(packaged, minted, "origin-request") == minted


@pytest.mark.parametrize(("rate", "sampled"), [(1.0, "1"), (0.0, "0")])
def test_the_edge_marks_new_traces_sampled_at_the_configured_rate(rate, sampled):
    header = lambda_edge.trace_header_ensure("", now=time.time(), sample_rate=rate)
    assert_traced(None, header, "minted", sampled=sampled)


def test_minted_ids_differ_from_request_to_request():
    headers = {lambda_edge.trace_header_ensure("", now=time.time(), sample_rate=1.0) for _ in range(50)}
    assert len(headers) == 50


def seen_by_middleware(header: str | None, settings, *, rate: float) -> str:
    settings.EDGE_ROUTER_ENABLED = True
    settings.TRACING_SAMPLE_RATE = rate
    seen = {}

    def origin(request):
        seen["trace"] = request.META.get("HTTP_X_AMZN_TRACE_ID")
        return HttpResponse("ok")

    extra = {} if header is None else {"HTTP_X_AMZN_TRACE_ID": header}
    EdgeRouterMiddleware(origin)(RequestFactory().get(URI, **extra))
    return seen["trace"]


@pytest.mark.parametrize(("header", "outcome"), TRACE_CASES)
def test_the_development_middleware_keeps_or_mints_it(db, header, outcome, settings):
    assert_traced(header, seen_by_middleware(header, settings, rate=1.0), outcome, sampled="1")


def test_the_middleware_hands_the_minted_header_to_the_origin_in_the_all_in_one_server(edge_routes, settings):
    settings.EDGE_ROUTER_ENABLED = True
    response = Client().get("/shop/")
    assert_traced(None, response.wsgi_request.META["HTTP_X_AMZN_TRACE_ID"], "minted")


def test_nginx_keeps_or_mints_the_trace_header_for_every_case(echo_origins, edge_routes, nginx, settings):
    settings.TRACING_SAMPLE_RATE = 1.0
    export_to(nginx)
    nginx.test_config()
    nginx.start()
    for header, outcome in TRACE_CASES:
        response = nginx.get(URI, {} if header is None else {"X-Amzn-Trace-Id": header})
        assert response.status == 200, response.body
        assert_traced(header or None, response.getheader("X-Seen-Trace"), outcome, sampled="1")
    seen = {nginx.get(URI).getheader("X-Seen-Trace") for _ in range(20)}
    assert len(seen) == 20, "every request gets its own trace"


def test_nginx_marks_new_traces_sampled_at_the_configured_rate(echo_origins, edge_routes, nginx, settings):
    settings.TRACING_SAMPLE_RATE = 0.5
    export_to(nginx)
    nginx.test_config()
    nginx.start()
    flags = [re.match(MINTED_TRACE, nginx.get(URI).getheader("X-Seen-Trace")).group(2) for _ in range(200)]
    # Half, give or take: 200 coin flips land outside 60..140 about once in 10^8 runs.
    assert 60 <= flags.count("1") <= 140, flags.count("1")


def test_the_route_table_bakes_in_the_sample_rate(db, settings):
    settings.TRACING_SAMPLE_RATE = 0.25
    assert selectors.route_table()["trace_sample_rate"] == 0.25
    settings.TRACING_ENABLED = False
    assert selectors.route_table()["trace_sample_rate"] == 0.0


# A viewer cannot have its requests traced by asking: each one traced is spans written by the
# hot path, its worker and the legacy API, and kept for days, a stampede's requests included.
VIEWER_SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.mark.parametrize(("rate", "sampled"), [(0.0, "0"), (1.0, "1")])
def test_the_edge_decides_the_sampling_whatever_the_viewer_asks(rate, sampled):
    header = lambda_edge.trace_header_ensure(VIEWER_SAMPLED, now=time.time(), sample_rate=rate)
    assert_traced(VIEWER_SAMPLED, header, "kept", sampled=sampled)
    unsampled = VIEWER_SAMPLED.replace("Sampled=1", "Sampled=0")
    assert_traced(
        unsampled, lambda_edge.trace_header_ensure(unsampled, now=0, sample_rate=rate), "kept", sampled=sampled
    )


def test_cloudfront_viewer_request_overrules_a_viewers_sampled_flag(edge_routes, tmp_path):
    with override_settings(TRACING_ENABLED=True, TRACING_SAMPLE_RATE=0.0):
        call_command("edge_export", "--target", "lambda-edge", "--out", str(tmp_path / "out"))
    handler = load_lambda_package((tmp_path / "out" / "lambda-edge.zip").read_bytes(), tmp_path / "package")
    decided = seen_by_lambda(handler, VIEWER_SAMPLED, "viewer-request")
    assert_traced(VIEWER_SAMPLED, decided, "kept", sampled="0")
    assert seen_by_lambda(handler, decided, "origin-request") == decided


def test_the_development_middleware_overrules_a_viewers_sampled_flag(db, settings):
    assert_traced(VIEWER_SAMPLED, seen_by_middleware(VIEWER_SAMPLED, settings, rate=0.0), "kept", sampled="0")


def test_nginx_overrules_a_viewers_sampled_flag(echo_origins, edge_routes, nginx, settings):
    settings.TRACING_SAMPLE_RATE = 0.0
    export_to(nginx)
    nginx.test_config()
    nginx.start()
    for _ in range(5):
        seen = nginx.get(URI, {"X-Amzn-Trace-Id": VIEWER_SAMPLED}).getheader("X-Seen-Trace")
        assert_traced(VIEWER_SAMPLED, seen, "kept", sampled="0")
