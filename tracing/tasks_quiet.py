"""A task whose trace is not sampled runs with every instrumentation suppressed, as a request
the edge did not sample does (tracing.middleware): its queries, cache calls and HTTP calls
make no spans, which nobody would keep. It keeps its trace: the log's events record its id,
a retry's message carries it (Celery's instrumentation injects it whatever the suppression),
and the legacy client sends it with each call (legacy_client.transport).

Celery's instrumentation makes the task's span current in task_prerun and ends it in
task_postrun; the suppression goes on top of it and comes off first:
`tasks_quiet_connect(instrument)` connects around the instrumentation."""

from __future__ import annotations

from collections.abc import Callable

from celery import signals
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY

_tokens: dict[str, object] = {}


def _enter(task_id: str | None = None, **kwargs) -> None:
    if task_id is None or trace.get_current_span().is_recording():
        return
    _tokens[task_id] = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))


def _leave(task_id: str | None = None, **kwargs) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        otel_context.detach(token)


def tasks_quiet_connect(instrument: Callable[[], None]) -> None:
    """Runs `instrument` (which connects Celery's instrumentation) between the two: the
    receivers of a signal run in the order they were connected."""
    signals.task_postrun.connect(_leave, weak=False)  # before the instrumentation ends its span
    instrument()
    signals.task_prerun.connect(_enter, weak=False)  # once the instrumentation made it current
