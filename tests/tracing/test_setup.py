"""Tracing set-up as each process does it (run in a fresh interpreter, as gunicorn's and
Celery's processes are): the sampler's choices, tracing off meaning nothing instrumented,
and spans sent to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT names one."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import PYTHON, ROOT

SCRIPT = r"""
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.conf import settings
from opentelemetry import trace
from tracing.context import attach
from tracing.setup import tracing_init, tracing_shutdown

before = list(settings.MIDDLEWARE)
on = tracing_init(service="probe")
tracer = trace.get_tracer("probe")
def recorded(carrier):
    with attach(carrier), tracer.start_as_current_span("probe") as span:
        return span.is_recording()
root = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled="
result = {
    "on": on,
    "middleware_added": [m for m in settings.MIDDLEWARE if m not in before],
    "new_trace_recorded": recorded({}),
    "edge_sampled_recorded": recorded({"X-Amzn-Trace-Id": root + "1"}),
    "edge_unsampled_recorded": recorded({"X-Amzn-Trace-Id": root + "0"}),
    "w3c_sampled_recorded": recorded({"traceparent": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"}),
}
with tracer.start_as_current_span("new root") as span:
    result["xray_epoch"] = trace.format_trace_id(span.get_span_context().trace_id)[:8]
# A lone client call (a worker loop's query) starts no trace; inside a task it is traced.
if on:
    from django.db import connection
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    ended = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ended))
    with tracer.start_as_current_span("lone call", kind=trace.SpanKind.CLIENT) as span:
        result["lone_client_recorded"] = span.is_recording()
    with tracer.start_as_current_span("task", kind=trace.SpanKind.CONSUMER):
        with tracer.start_as_current_span("call", kind=trace.SpanKind.CLIENT) as span:
            result["client_in_task_recorded"] = span.is_recording()
    ended.clear()
    # The same with a real query, where the database is PostgreSQL (psycopg instrumented).
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    with tracer.start_as_current_span("task", kind=trace.SpanKind.CONSUMER):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
    result["vendor"] = connection.vendor
    result["ended"] = sorted(
        [s.kind.name, s.parent is None, s.attributes.get("db.statement", "")] for s in ended.get_finished_spans()
    )
tracing_shutdown()
print("RESULT " + json.dumps(result))
"""


def probe(process_env: dict, **env: str) -> dict:
    done = subprocess.run(
        [PYTHON, "-c", SCRIPT], cwd=ROOT, env={**process_env, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.django_db(transaction=True)
def test_a_request_arriving_sampled_is_traced_and_new_traces_follow_the_sample_rate(process_env):
    import time

    result = probe(process_env, TRACING_ENABLED="1", TRACING_SAMPLE_RATE="0", TRACING_STORE="0")
    assert result["on"] is True
    assert result["middleware_added"] == ["tracing.middleware.SampledRequestsMiddleware"]
    assert result["edge_sampled_recorded"] is True
    assert result["w3c_sampled_recorded"] is True
    assert result["edge_unsampled_recorded"] is False
    assert result["new_trace_recorded"] is False
    # X-Ray-compatible ids: a new trace's first 8 hex digits are the epoch seconds.
    assert abs(int(result["xray_epoch"], 16) - time.time()) < 60
    everything = probe(process_env, TRACING_SAMPLE_RATE="1", TRACING_STORE="0")
    assert everything["new_trace_recorded"] is True


@pytest.mark.django_db(transaction=True)
def test_a_lone_query_or_cache_call_starts_no_trace_even_when_every_trace_is_kept(process_env):
    result = probe(process_env, TRACING_SAMPLE_RATE="1", TRACING_STORE="0")
    # What a worker's loop or a middleware before the request's span does: no trace of one call.
    assert result["lone_client_recorded"] is False
    # The same call inside a task is part of the task's trace.
    assert result["client_in_task_recorded"] is True
    if result["vendor"] == "postgresql":
        assert result["ended"] == [["CLIENT", False, "SELECT 2"], ["CONSUMER", True, ""]], result["ended"]


TASK_SCRIPT = r"""
import json, os, uuid, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from celery.app.trace import build_tracer
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from config.celery import app
from tracing.setup import tracing_init

tracing_init(service="worker", django=False)

@app.task(name="probe.instrumented")
def probe():
    span = trace.get_current_span()
    return [is_instrumentation_enabled(), span.is_recording(), format(span.get_span_context().trace_id, "032x")]

run = build_tracer(probe.name, probe, app=app)  # what a worker's pool runs for each message
result = {}
for flags in ("00", "01"):
    message = {"traceparent": f"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-{flags}", "delivery_info": {}}
    result[flags] = run(str(uuid.uuid4()), [], {}, message).retval
result["after"] = is_instrumentation_enabled()
print("RESULT " + json.dumps(result))
"""


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_trace_is_not_sampled_runs_with_instrumentation_suppressed_and_keeps_its_trace(process_env):
    env = {**process_env, "TRACING_ENABLED": "1", "TRACING_SAMPLE_RATE": "0", "TRACING_STORE": "0"}
    done = subprocess.run([PYTHON, "-c", TASK_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    # Unsampled: no span for each query and cache call, yet the trace id the log records.
    assert result["00"] == [False, False, "5759e988bd862e3fe1be46a994272793"]
    assert result["01"] == [True, True, "5759e988bd862e3fe1be46a994272793"]
    assert result["after"] is True  # the suppression ends with the task


@pytest.mark.django_db(transaction=True)
def test_tracing_off_instruments_nothing(process_env):
    result = probe(process_env, TRACING_ENABLED="0")
    assert result["on"] is False
    assert result["middleware_added"] == []
    assert not result["edge_sampled_recorded"]


REQUEST_SCRIPT = r"""
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.test import Client
from tracing.setup import tracing_init, tracing_shutdown

tracing_init(service="probe")
# Served as runserver, granian and Lambda serve it: no RAW_URI in the environ.
client = Client(raise_request_exception=False)
sampled = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
result = {
    path: [client.get(path, HTTP_X_AMZN_TRACE_ID=sampled).status_code, client.get(path).status_code]
    for path in ("/api/\u20ac", "/legacy-api/orders/\u4e2d", "/shop/rods/\u20ac/", "/shop/caf\u00e9/")
}
tracing_shutdown()
print("RESULT " + json.dumps(result))
"""


@pytest.mark.django_db(transaction=True)
def test_a_traced_request_for_a_path_past_latin_1_is_answered_not_a_500(process_env):
    # OpenTelemetry reads the path from the environ as WSGI gives it (a byte a character),
    # where Django has put it decoded: a euro sign in the path was a 500 whenever it was traced.
    env = {**process_env, "TRACING_ENABLED": "1", "TRACING_SAMPLE_RATE": "0", "TRACING_STORE": "0"}
    done = subprocess.run([PYTHON, "-c", REQUEST_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result == {path: [404, 404] for path in result}, result


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.django_db(transaction=True)
def test_spans_also_go_to_an_otlp_collector_when_one_is_configured(process_env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collector.received.clear()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        probe(process_env, TRACING_SAMPLE_RATE="1", TRACING_STORE="0", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    finally:
        server.shutdown()
        server.server_close()
    paths = {path for path, _ in Collector.received}
    assert paths == {"/v1/traces"}
    sent = b"".join(body for _, body in Collector.received)
    assert bytes.fromhex("5759e988bd862e3fe1be46a994272793") in sent  # the edge's trace, in protobuf
    assert b"probe" in sent  # the service's name


@pytest.mark.parametrize(
    "header",
    [
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        "Root=1-6b0db68c-8e8f954b631129d3cf16944c;Parent=0000000000000001;Sampled=0",
    ],
)
def test_the_fast_reading_of_an_unsampled_edge_header_agrees_with_the_propagators(header):
    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import wsgi_getter

    from tracing.context import PROPAGATOR
    from tracing.middleware import _unsampled_context

    fast = trace.get_current_span(_unsampled_context(header)).get_span_context()
    full = trace.get_current_span(PROPAGATOR.extract({"HTTP_X_AMZN_TRACE_ID": header}, getter=wsgi_getter))
    assert fast == full.get_span_context() and not fast.trace_flags.sampled and fast.is_remote


@pytest.mark.parametrize(
    "header",
    [
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "Self=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
        "Root=1-5759e988-bd862e3fe1be46a99427279x;Parent=53995c3f42cd8ad8;Sampled=0",
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=0",
        "",
    ],
)
def test_anything_else_is_left_to_the_propagators(header):
    from tracing.middleware import _unsampled_context

    assert _unsampled_context(header) is None
