"""Where a trace may start. A trace starts where work enters a process: a request, a task, a
publish, a command's own span. A lone client call (a query, a cache command, an HTTP call)
with no span around it starts none: the workers' loops (the outbox relay, the log's
consumers, the dashboard's maker) and the middlewares that run before a request's span exist
make such calls all the time, and kept at the sample rate each would be a trace of one query,
burying the orders' traces in the admin's list and the service map."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.util.types import Attributes


class EntrySampler(Sampler):
    """A new trace is kept at `rate`, unless its first span is a client call."""

    def __init__(self, rate: float):
        self._rate = TraceIdRatioBased(rate)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state=None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            state = get_current_span(parent_context).get_span_context().trace_state
            return SamplingResult(Decision.DROP, None, state)
        return self._rate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"EntrySampler{{{self._rate.get_description()}}}"


def sampler(rate: float) -> Sampler:
    """A span with a parent follows its parent's decision (the edge's, or the request's
    across the queue); a new trace is kept at `rate`, and only where work enters."""
    return ParentBased(EntrySampler(rate))
