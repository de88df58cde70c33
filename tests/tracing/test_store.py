"""The span store: the exporter (what it keeps, what it cuts out), finding a trace by trace
id, order number or URL path, the waterfall, the service map, retention, `traces show` and
the admin's pages with their permission. Spans come from a real OpenTelemetry SDK."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from opentelemetry.instrumentation.wsgi import collect_request_attributes
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, format_trace_id, set_span_in_context

from config.admin_base import short_datetime
from events.services import event_append
from tracing import selectors, services, summaries
from tracing.admin import trace_url
from tracing.context import attach, current_carrier
from tracing.exporter import DatabaseSpanExporter, path_redacted
from tracing.models import Span

pytestmark = pytest.mark.django_db


def tracer(service: str):
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(DatabaseSpanExporter()))
    return provider.get_tracer("test")


EDGE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def one_order_trace(*, number: str = "T000042", fail_legacy: bool = False, edge_header: str = EDGE_HEADER) -> str:
    """The hops of one hot order, as the instrumentations name them: edge → hot path (SQL,
    Redis, publish) → worker (task) → legacy API (SQL)."""
    hotpath, worker, legacy = tracer("hotpath"), tracer("worker"), tracer("legacy-api")
    client, server_kind = SpanKind.CLIENT, SpanKind.SERVER
    target = {"http.target": "/shop/rods/muskie-casting-rod/orders?utm=secret", "http.status_code": 202}
    with (
        attach({"X-Amzn-Trace-Id": edge_header}),
        hotpath.start_as_current_span(
            "POST /shop/<category>/<product>/orders", kind=server_kind, attributes=target
        ) as server,
    ):
        with hotpath.start_as_current_span("WITH", kind=client, attributes={"db.system": "postgresql"}):
            pass
        with hotpath.start_as_current_span("INCR", kind=client, attributes={"db.system": "redis"}):
            pass
        with hotpath.start_as_current_span("apply_async/orders.tasks.order_process", kind=SpanKind.PRODUCER):
            carrier = current_carrier()
        accepted = {"source": "shop.orders", "detail_type": "Order", "type": "ORDER", "subtype": "HOT"}
        event_append(**accepted, status="ACCEPTED", data={"number": number})
    with (
        attach(carrier),
        worker.start_as_current_span("run/orders.tasks.order_process", kind=SpanKind.CONSUMER),
        worker.start_as_current_span("POST", kind=client, attributes={"server.address": "legacy"}),
        legacy.start_as_current_span(
            "POST legacy-api/orders", kind=server_kind, attributes={"http.target": "/legacy-api/orders"}
        ) as legacy_server,
    ):
        with legacy.start_as_current_span("INSERT", kind=client, attributes={"db.system": "postgresql"}):
            pass
        if fail_legacy:
            legacy_server.set_status(Status(StatusCode.ERROR, "503"))
    return format_trace_id(server.get_span_context().trace_id)


def test_one_order_is_one_trace_with_the_edges_root_and_every_hop():
    trace_id = one_order_trace()
    assert trace_id == "5759e988bd862e3fe1be46a994272793"
    trace = selectors.trace_get(trace_id)
    assert trace.xray_id == "1-5759e988-bd862e3fe1be46a994272793"
    shape = [(row.depth, row.span.service, row.span.name) for row in trace.rows]
    assert shape == [
        (0, "hotpath", "POST /shop/<category>/<product>/orders"),
        (1, "hotpath", "WITH"),
        (1, "hotpath", "INCR"),
        (1, "hotpath", "apply_async/orders.tasks.order_process"),
        (2, "worker", "run/orders.tasks.order_process"),
        (3, "worker", "POST"),
        (4, "legacy-api", "POST legacy-api/orders"),
        (5, "legacy-api", "INSERT"),
    ]
    root = trace.rows[0].span
    assert root.parent_id == "53995c3f42cd8ad8" and root.parent_remote
    assert all(0 <= row.left_pct <= 100 and row.width_pct > 0 for row in trace.rows)


def test_the_exporter_cuts_query_strings_and_token_segments_out():
    one_order_trace()
    server = Span.objects.get(kind="server", service="hotpath")
    assert server.path == "/shop/rods/muskie-casting-rod/orders"
    assert "secret" not in json.dumps(server.attributes)
    token = "Zq3xV9_kP2mW8rT5yB1nC4dF7gH0jL6s"
    assert path_redacted(f"/shop/rods/muskie-casting-rod/orders/T000042/{token}?a=b") == (
        "/shop/rods/muskie-casting-rod/orders/T000042/…"
    )
    assert path_redacted("/shop/rods/muskie-casting-rod/orders") == "/shop/rods/muskie-casting-rod/orders"
    # A status token may hold no digit at all (one in about 1,500 of token_urlsafe(32)'s).
    lettered = "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGhIjKlMnOpQ"
    assert path_redacted(f"/shop/rods/muskie-casting-rod/orders/T000042/{lettered}") == (
        "/shop/rods/muskie-casting-rod/orders/T000042/…"
    )
    assert path_redacted("/legacy-api/orders/12") == "/legacy-api/orders/12"


def test_a_mailbox_in_a_url_is_cut_out_raw_or_percent_encoded():
    """A request for /account/email/ann@example.com/ (a 404 someone typed, a link a mail client
    mangled) kept the address in the span's path and URL, shown to whoever reads traces."""
    assert path_redacted("/account/email/ann@example.com/") == "/account/email/…/"
    assert path_redacted("http://shop.example/account/email/ann%40example.com/?x=1") == (
        "http://shop.example/account/email/…/"
    )
    assert path_redacted("/a/b%40c.d") == "/a/…"
    assert path_redacted("/shop/rods/muskie-casting-rod/") == "/shop/rods/muskie-casting-rod/"


def test_a_signed_link_s_token_is_cut_out_whole_from_a_url_rebuilt_percent_encoded():
    """A server that gives no raw request line (runserver, granian, Lambda) has its URL rebuilt
    by the WSGI instrumentation, `:` written `%3A`: a verification link's token was cut at its
    first `%`, and its timestamp and signature were kept, which with the payload (the account's
    id and the address it was sent to) make the link again."""
    token = "eyJ1c2VyIjoxMCwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20ifQ:1xaIwK:9nIkMUucUdvVnK9f8_CdhnkxySB8KlHNBPN1j_w_vOI"
    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "shop.example.com",
        "SERVER_NAME": "shop.example.com",
        "SERVER_PORT": "443",
        "PATH_INFO": f"/accounts/verify-email/{token}/",
        "QUERY_STRING": "",
    }
    attributes = {**collect_request_attributes(environ), "http.status_code": 302}
    assert "%3A" in attributes["http.url"]  # as the instrumentation writes it
    with tracer("monolith").start_as_current_span(
        "GET accounts/verify-email/<str:token>/", kind=SpanKind.SERVER, attributes=attributes
    ):
        pass

    server = Span.objects.get(kind="server", service="monolith")
    assert server.path == "/accounts/verify-email/…/"
    assert "9nIkMUucUdvVnK9f8" not in server.path + json.dumps(server.attributes)
    assert path_redacted(f"/accounts/verify-email/{token}/") == "/accounts/verify-email/…/"


def test_a_trace_is_found_by_trace_id_xray_id_order_number_and_url_path():
    trace_id = one_order_trace(number="T000042")
    other = one_order_trace(number="T000043")  # the same edge header: the same trace
    assert other == trace_id
    assert selectors.trace_ids_find(trace_id) == [trace_id]
    assert selectors.trace_ids_find("1-5759e988-bd862e3fe1be46a994272793") == [trace_id]
    assert selectors.trace_ids_find("T000042") == [trace_id]
    assert selectors.trace_ids_find("T999999") == []
    assert selectors.trace_ids_find("/shop/rods/muskie") == [trace_id]
    assert selectors.trace_ids_find("/legacy-api/orders") == [trace_id]
    assert selectors.trace_ids_find("/nowhere") == []


def test_an_order_whose_trace_was_not_sampled_is_found_with_no_trace_not_sent_to_a_missing_one(admin_client):
    """Most requests are not sampled: their order's events still name their trace id."""
    accepted = {"source": "shop.orders", "detail_type": "Order", "type": "ORDER", "subtype": "HOT"}
    with attach({"X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678;Sampled=0"}):
        event_append(**accepted, status="ACCEPTED", data={"number": "T000077"})
    assert selectors.trace_ids_find("T000077") == []
    assert selectors.trace_ids_find("1-67891233-abcdef012345678912345678") == []
    page = admin_client.get("/admin/tracing/span/", {"q": "T000077"})
    assert page.status_code == 200
    assert "No stored trace matches" in page.content.decode()


def edge_header(n: int) -> str:
    return f"Root=1-5759e988-{n:024x};Parent=53995c3f42cd8ad8;Sampled=1"


def test_recent_traces_say_what_each_was_its_order_status_duration_and_start(admin_client):
    trace_id = one_order_trace(number="T000042")
    summary = summaries.traces_recent()[0]
    stored = selectors.trace_get(trace_id)
    assert (summary.request, summary.order_number, summary.status, summary.spans) == (
        "POST /shop/rods/muskie-casting-rod/orders",
        "T000042",
        "202",
        8,
    )
    assert summary.start == stored.rows[0].span.start
    assert summary.duration_ms == pytest.approx(stored.duration_ms, abs=1)  # the whole trace, as its page says

    page = admin_client.get(reverse("admin:tracing_span_changelist")).content.decode()
    row = re.search(r"<tr>\s*<td class=\"what\">.*?</tr>", page, re.S).group(0)
    assert f'<a href="{escape(trace_url(trace_id))}" title="Trace 1-5759e988-bd862e3fe1be46a994272793">' in row
    assert "POST /shop/rods/muskie-casting-rod/orders</a>" in row
    assert '<code class="trace-id">1-5759e988-bd862e3fe1be46a994272793</code>' in row
    assert '<td class="order">T000042</td>' in row
    assert '<td class="status"><span>202</span></td>' in row
    assert f'<td class="ms">{summary.duration_ms:.1f} ms</td>' in row
    assert f">{short_datetime(summary.start)}</time>" in row


def test_a_trace_begun_by_a_task_shows_its_name_and_an_error_with_no_order():
    tasks = tracer("worker")
    with tasks.start_as_current_span("run/readmodels.tasks.dashboard_snapshot", kind=SpanKind.CONSUMER) as span:
        span.set_status(Status(StatusCode.ERROR, "boom"))
    summary = summaries.traces_recent()[0]
    assert (summary.request, summary.order_number, summary.status, summary.failed) == (
        "run/readmodels.tasks.dashboard_snapshot",
        "",
        "error",
        True,
    )
    assert summary.errors == 1


def test_recent_traces_show_no_status_token_nor_card_number(admin_client):
    token = "Zq3xV9_kP2mW8rT5yB1nC4dF7gH0jL6s"
    status_url = f"/shop/rods/muskie-casting-rod/orders/T000042/{token}?card=4242424242424242"
    attributes = {"http.method": "GET", "http.target": status_url, "http.status_code": 200}
    poll = "GET shop/<category>/<product>/orders/<number>/<token>"
    with tracer("hotpath").start_as_current_span(poll, kind=SpanKind.SERVER, attributes=attributes):
        pass
    page = admin_client.get(reverse("admin:tracing_span_changelist")).content.decode()
    assert "GET /shop/rods/muskie-casting-rod/orders/T000042/…</a>" in page
    assert token not in page and "4242424242424242" not in page


def test_an_error_keeps_its_first_line_not_the_row_the_database_quoted(admin_client):
    refused = (
        'CheckViolation: new row for relation "shop_placedorder" violates check constraint "placed_total"\n'
        "DETAIL:  Failing row contains (8, L00000019, olga.private@example.org, Olga Buyer, 1 Main St, 1111)."
    )
    with tracer("monolith").start_as_current_span("POST checkout/", kind=SpanKind.SERVER) as span:
        span.set_status(Status(StatusCode.ERROR, refused))

    stored = Span.objects.get(name="POST checkout/")
    assert stored.attributes["error.message"] == refused.split("\n")[0]
    with tracer("monolith").start_as_current_span("POST checkout/ again", kind=SpanKind.SERVER) as span:
        span.set_status(Status(StatusCode.ERROR, "SMTPRecipientsRefused: {'olga.private@example.org': (550, b'no')}"))
    again = Span.objects.get(name="POST checkout/ again").attributes["error.message"]
    assert again == "SMTPRecipientsRefused: {'…@example.org': (550, b'no')}"
    assert "olga.private" not in json.dumps(stored.attributes)
    page = admin_client.get(reverse("admin:tracing_span_changelist")).content.decode()
    assert "olga.private" not in page and "Olga Buyer" not in page


def test_the_trace_lists_take_the_same_queries_for_one_trace_as_for_many(admin_client):
    finder = reverse("admin:tracing_span_changelist")
    one_order_trace(number="T000001", edge_header=edge_header(1))
    admin_client.get(finder)  # what the first request of a session reads once
    with CaptureQueriesContext(connection) as one:
        admin_client.get(finder)
        admin_client.get(finder, {"q": "/shop/rods/"})
    for n in range(2, 6):
        one_order_trace(number=f"T00000{n}", edge_header=edge_header(n))
    with CaptureQueriesContext(connection) as many:
        recent = admin_client.get(finder).content.decode()
        found = admin_client.get(finder, {"q": "/shop/rods/"}).content.decode()
    assert len(many) == len(one)
    for page in (recent, found):
        assert [int(n) for n in re.findall(r'<td class="order">T(\d+)</td>', page)] == [5, 4, 3, 2, 1]


def test_the_service_map_shows_each_hop_with_calls_errors_and_p99():
    traces = [one_order_trace() for _ in range(3)] + [one_order_trace(fail_legacy=True)]
    # These traces' map: spans the suite's other traced requests export meanwhile stay out.
    edges = {(e.source, e.target): e for e in selectors.service_map(trace_ids=traces)}
    assert set(edges) == {
        ("edge", "hotpath"),
        ("hotpath", "postgresql"),
        ("hotpath", "redis"),
        ("hotpath", "queue"),
        ("queue", "worker"),
        ("worker", "legacy-api"),
        ("legacy-api", "postgresql"),
    }
    assert {key: edge.calls for key, edge in edges.items()} == dict.fromkeys(edges, 4)
    assert edges[("worker", "legacy-api")].errors == 1
    assert sum(edge.errors for edge in edges.values()) == 1
    assert all(edge.p99_ms >= 0 for edge in edges.values())


def http_call(*, answer_ms: float | None, wait_ms: float, status: int | None = None, failed: bool = False) -> str:
    """A worker's call to the legacy API as urllib3's instrumentation records it (its address in
    the URL only), waited `wait_ms` for; the legacy API's request, `answer_ms` long, if it came."""
    worker, legacy, start = tracer("worker"), tracer("legacy-api"), time.time_ns()
    attributes = {"http.url": "http://legacy.internal:8001/legacy-api/orders", "http.method": "POST"}
    call = worker.start_span("POST", kind=SpanKind.CLIENT, attributes=attributes, start_time=start)
    if answer_ms is not None:
        inside = set_span_in_context(call)
        legacy.start_span("POST legacy-api/orders", inside, SpanKind.SERVER, start_time=start).end(
            start + int(answer_ms * 1e6)
        )
        call.set_attribute("http.status_code", status or 201)
    if failed or (status or 0) >= 400:
        call.set_status(Status(StatusCode.ERROR, "NewConnectionError: refused" if failed else None))
    call.end(start + int(wait_ms * 1e6))
    return format_trace_id(call.get_span_context().trace_id)


def test_the_service_map_counts_every_call_to_the_legacy_api_as_the_worker_waited_for_it():
    # A Black Friday backend: one order placed, one card declined, one call queued 3 s in front
    # of a legacy API that then took 0.1 s, two calls refused while it was down.
    traces = [
        http_call(answer_ms=50, wait_ms=60),
        http_call(answer_ms=40, wait_ms=45, status=402),
        http_call(answer_ms=100, wait_ms=3000),
        http_call(answer_ms=None, wait_ms=2, failed=True),
        http_call(answer_ms=None, wait_ms=3, failed=True),
    ]
    edges = {(e.source, e.target): e for e in selectors.service_map(trace_ids=traces)}
    assert set(edges) == {("worker", "legacy-api")}
    hop = edges[("worker", "legacy-api")]
    # Every call, the refused ones as errors (a declined card is an answer), the slow one's wait.
    assert (hop.calls, hop.errors, hop.p99_ms) == (5, 2, 3000.0)


def test_spans_past_their_retention_are_pruned(settings):
    settings.TRACING_RETENTION_HOURS = 24
    trace_id = one_order_trace()
    kept = Span.objects.count()
    Span.objects.filter(name="WITH").update(start=timezone.now() - timedelta(hours=25))
    assert services.spans_prune() == 1
    assert Span.objects.count() == kept - 1
    assert selectors.trace_get(trace_id) is not None


def test_traces_show_prints_the_waterfall_and_json(capsys):
    trace_id = one_order_trace(number="T000042")
    call_command("traces", "show", "T000042")
    out = capsys.readouterr().out
    assert "1-5759e988-bd862e3fe1be46a994272793" in out
    lines = out.splitlines()
    assert [line.split(":")[0].strip() for line in lines[2:]] == [
        "hotpath",
        "hotpath",
        "hotpath",
        "hotpath",
        "worker",
        "worker",
        "legacy-api",
        "legacy-api",
    ]
    call_command("traces", "show", trace_id, "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["trace_id"] == trace_id and len(data["spans"]) == 8
    assert {span["service"] for span in data["spans"]} == {"hotpath", "worker", "legacy-api"}
    with pytest.raises(CommandError, match="no stored trace"):
        call_command("traces", "show", "T999999")


def test_the_admin_trace_view_and_service_map_need_the_view_permission(viewer, nobody):
    trace_id = one_order_trace(number="T000042")
    waterfall = trace_url(trace_id)
    map_url = reverse("admin:tracing_span_map")
    finder = reverse("admin:tracing_span_changelist")
    for url in (waterfall, map_url, finder):
        assert nobody.get(url).status_code == 403, url
    found = viewer.get(finder, {"q": "T000042"})
    assert found.status_code == 302 and found["Location"] == waterfall
    page = viewer.get(waterfall).content.decode()
    assert "1-5759e988-bd862e3fe1be46a994272793" in page and "run/orders.tasks.order_process" in page
    by_path = viewer.get(finder, {"q": "/legacy-api/"}).content.decode()
    assert escape(waterfall) in by_path
    assert viewer.get(trace_url("0" * 32)).status_code == 404
    assert viewer.post(finder, {"action": "delete_selected", "_selected_action": ["1"]}).status_code == 403
    service_map = viewer.get(map_url).content.decode()
    assert "legacy-api" in service_map and "queue" in service_map


def test_carrier_is_empty_outside_a_trace_and_attach_does_nothing_then():
    assert current_carrier() == {}
    with attach({}):
        assert current_carrier() == {}
    with attach({"traceparent": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}):
        assert current_carrier()["traceparent"].startswith("00-5759e988bd862e3fe1be46a994272793-")
    assert set_span_in_context  # the SDK's context API is what attach uses
