"""The trace context as data: what a message or a row carries so that work done later, in
another process, joins the buyer's trace.

    carrier = current_carrier()          # {"traceparent": ..., "X-Amzn-Trace-Id": ...} or {}
    ...                                  # stored with the outbox row, sent in a message
    with attach(carrier):                # the relay, before it publishes
        send_task(...)

With tracing off or no trace in progress the carrier is empty and `attach` does nothing."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import default_getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tracing.ids import xray_from_otel


class _RootOnlyGetter:
    """Reads X-Amzn-Trace-Id as X-Ray writes it at the start of a trace: Root and Sampled with
    no Parent (a load balancer's, an SDK's, a buyer's own). The edge passes such a header on as
    well-formed, but OpenTelemetry's X-Ray propagator drops a header without Parent, and the
    origin then started a trace of its own and sampled it afresh: the edge's decision and the
    trace id it had were lost. A Root-only header is read with a parent derived from its Root
    (the edge's request, which no span records)."""

    def __init__(self, getter):
        self._getter = getter

    def get(self, carrier, key):
        values = self._getter.get(carrier, key)
        if key.lower() != "x-amzn-trace-id" or not values:
            return values
        value = values[0]
        fields = [f.strip() for f in value.split(";")]
        roots = [f for f in fields if f.startswith("Root=")]
        if not roots or any(f.startswith("Parent=") for f in fields):
            return values
        parent = hashlib.sha256(roots[0].encode()).hexdigest()[:16]
        return [f"{value.rstrip(';')};Parent={parent}", *values[1:]]

    def keys(self, carrier):
        return self._getter.keys(carrier)


class _XRayPropagator(AwsXRayPropagator):
    def extract(self, carrier, context=None, getter=default_getter):
        return super().extract(carrier, context=context, getter=_RootOnlyGetter(getter))


# W3C traceparent and X-Ray's X-Amzn-Trace-Id, both written, both read; X-Ray's last, so
# that when both come in, the edge's header decides. Every process's global propagator.
PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), _XRayPropagator()])


def current_carrier() -> dict[str, str]:
    """The W3C header that carries the current trace (its sampled flag included), or {}.
    Built directly: it runs for every order the hot path takes, sampled or not."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"}


@contextlib.contextmanager
def attach(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Makes the trace in `carrier` (if any) the current one inside the block. After the block
    the context is the one before it, whatever the block left attached: Celery's
    instrumentation makes a span current before a publish and ends it after, so a publish
    that raises would otherwise leave its span current in the thread, the parent of whatever
    the thread does next."""
    token = otel_context.attach(PROPAGATOR.extract(dict(carrier)) if carrier else otel_context.get_current())
    try:
        yield
    finally:
        otel_context.detach(token)


def current_xray_trace_id() -> str:
    """The current trace's id as X-Ray writes it (`1-5759e988-bd86...`), or '' outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return xray_from_otel(trace.format_trace_id(context.trace_id))
