"""The origin's tracing middleware: OpenTelemetry's Django middleware, entered only by
requests that are traced.

A request that comes through the edge carries the edge's decision (X-Amzn-Trace-Id ...
Sampled=0|1, or traceparent's flags). One that is not sampled runs with every instrumentation
suppressed, so it costs a header parse and nothing else, yet keeps its trace id: the log's
events record it and the task message carries it (unsampled), so the worker does not start a
trace of its own. A request with no trace header is left to the sampler (TRACING_SAMPLE_RATE)."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.wsgi import wsgi_getter

from tracing.context import PROPAGATOR

OTEL_MIDDLEWARE = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
UNSAMPLED = "tracing.unsampled"


def _unsampled_context(header: str):
    """The context of an X-Ray header the edge marked Sampled=0, read with no validation
    beyond what it needs (most of a sale's requests); None for anything else, which the
    propagators then read in full."""
    if not header.endswith("Sampled=0") or not header.startswith("Root=1-"):
        return None
    parts = header.split(";")
    if len(parts) != 3 or not parts[1].startswith("Parent=") or len(header) != 74:
        return None
    try:
        trace_id = int(parts[0][7:15] + parts[0][16:40], 16)
        span_id = int(parts[1][7:], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    parent = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(0))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


class SampledRequestsMiddleware(_DjangoMiddleware):
    def __call__(self, request):
        meta = request.META
        if "HTTP_X_AMZN_TRACE_ID" not in meta and "HTTP_TRACEPARENT" not in meta:
            return super().__call__(request)
        incoming = _unsampled_context(meta.get("HTTP_X_AMZN_TRACE_ID", ""))
        if incoming is None:
            incoming = PROPAGATOR.extract(meta, getter=wsgi_getter)
            parent = trace.get_current_span(incoming).get_span_context()
            if not parent.is_valid or parent.trace_flags.sampled:
                return super().__call__(request)
        meta[UNSAMPLED] = True
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, incoming))
        try:
            return self.get_response(request)
        finally:
            otel_context.detach(token)

    def process_request(self, request):
        # OpenTelemetry reads the URL from the environ as WSGI gives it (PEP 3333: the path's
        # bytes, one character each), where Django has put the decoded path: without RAW_URI
        # (runserver, granian, Lambda) a character past U+00FF (`/shop/€/`) made every traced
        # request for such a path a 500. It is given the path as WSGI gave it, then Django's back.
        meta = request.META
        path = meta.get("PATH_INFO", "")
        if path.isascii():
            return super().process_request(request)
        meta["PATH_INFO"] = path.encode().decode("latin-1")
        try:
            return super().process_request(request)
        finally:
            meta["PATH_INFO"] = path

    def process_view(self, request, view_func, *args, **kwargs):
        if UNSAMPLED not in request.META:
            return super().process_view(request, view_func, *args, **kwargs)
        return None

    def process_exception(self, request, exception):
        if UNSAMPLED not in request.META:
            return super().process_exception(request, exception)
        return None
