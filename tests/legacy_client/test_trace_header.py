"""The legacy client sends its caller's trace, sampled or not: a storefront request or a task
the edge did not sample runs with its instrumentation suppressed, and without the header the
legacy API would start (and keep, at the sample rate) traces of its own."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import suppress_instrumentation

from legacy_client.transport import request
from tracing.context import attach

UNSAMPLED = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"traceparent": self.headers.get("traceparent")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LEGACY_API_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield
    server.shutdown()
    server.server_close()


def test_a_call_in_an_unsampled_trace_carries_that_trace_even_with_instrumentation_suppressed(echo):
    with attach({"traceparent": UNSAMPLED}), suppress_instrumentation():
        sent = request("GET", "/echo").data["traceparent"]
    assert sent == UNSAMPLED


def test_a_call_outside_any_trace_carries_none_of_its_own(echo):
    # Suppressed, so that an instrumentation set up in this process adds none either.
    token = otel_context.attach(otel_context.Context())
    try:
        with suppress_instrumentation():
            assert request("GET", "/echo").data["traceparent"] is None
    finally:
        otel_context.detach(token)
