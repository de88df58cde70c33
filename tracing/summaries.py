"""Traces summed up for the admin's lists: the request (or task) that began each, the order it
belongs to, how it answered and how long it took; a few queries however many traces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, Func, Max, Min, Q, Window
from django.db.models.functions import RowNumber

from tracing.exporter import path_redacted
from tracing.ids import otel_from_any, xray_from_otel
from tracing.models import Span, SpanKind
from tracing.selectors import order_events

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# How much earlier than its trace's first span an order's event may be stamped: the event's
# time is taken by another process's clock.
EVENT_CLOCK_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class TraceSummary:
    """One trace as a list shows it: the request (or task) that began it, the order it belongs
    to, how it answered, how long it took from its first span to the end of its last."""

    trace_id: str
    start: datetime
    duration_ms: float
    spans: int
    errors: int
    request: str
    http_status: int | None
    root_error: bool
    order_number: str

    @property
    def xray_id(self) -> str:
        return xray_from_otel(self.trace_id)

    @property
    def status(self) -> str:
        if self.http_status:
            return str(self.http_status)
        return "error" if self.root_error else "ok"

    @property
    def failed(self) -> bool:
        return self.root_error or (self.http_status or 0) >= 500


class EpochMicroseconds(Func):
    """A moment as microseconds since 1970, so that a span's end (`start` + `duration_us`) is
    plain arithmetic on both databases the shop runs on (SQLite reads it to the millisecond)."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "(EXTRACT(EPOCH FROM %(expressions)s)::double precision * 1000000)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400000000.0)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def traces_recent(*, limit: int = 25) -> list[TraceSummary]:
    """The newest traces, each summed up (`TraceSummary`)."""
    return _summaries(Span.objects.all(), limit=limit)


def traces_summary(trace_ids: list[str]) -> list[TraceSummary]:
    """The stored ones of these traces, each summed up, newest first."""
    return _summaries(Span.objects.filter(trace_id__in=trace_ids), limit=len(trace_ids)) if trace_ids else []


def _summaries(spans, *, limit: int) -> list[TraceSummary]:
    """Three queries however many traces: their figures, their root spans, and their order
    numbers from the log."""
    rows = list(
        spans.values("trace_id")
        .annotate(
            first=Min("start"),
            begin_us=Min(EpochMicroseconds("start")),
            end_us=Max(EpochMicroseconds("start") + F("duration_us")),
            spans=Count("pk"),
            errors=Count("pk", filter=Q(error=True)),
        )
        .order_by("-first")[:limit]
    )
    if not rows:
        return []
    trace_ids = [row["trace_id"] for row in rows]
    roots = {span.trace_id: span for span in _root_spans(trace_ids)}
    numbers = _order_numbers(trace_ids, since=min(row["first"] for row in rows))
    summaries = []
    for row in rows:
        root = roots.get(row["trace_id"])
        if root is None:  # pruned between the two reads
            continue
        attributes = root.attributes or {}
        status = attributes.get("http.status_code") or attributes.get("http.response.status_code")
        summaries.append(
            TraceSummary(
                trace_id=row["trace_id"],
                start=row["first"],
                duration_ms=max(float(row["end_us"]) - float(row["begin_us"]), 0) / 1000,
                spans=row["spans"],
                errors=row["errors"],
                request=_request_of(root),
                http_status=int(status) if str(status or "").isdigit() else None,
                root_error=root.error,
                order_number=numbers.get(row["trace_id"]) or str(attributes.get("shop.order.number") or ""),
            )
        )
    return summaries


def _root_spans(trace_ids: list[str]) -> list[Span]:
    """Each trace's first span, the one that began it: the request, or the task."""
    first = Window(RowNumber(), partition_by=[F("trace_id")], order_by=[F("start").asc(), F("id").asc()])
    return list(
        Span.objects.filter(trace_id__in=trace_ids)
        .annotate(rank=first)
        .filter(rank=1)
        .only("trace_id", "name", "kind", "path", "error", "attributes")
    )


def _request_of(root: Span) -> str:
    """`POST /shop/rods/muskie-casting-rod/orders` for a request (its path with no token in
    it), else the span's name (a task's, a command's)."""
    if root.kind != SpanKind.SERVER or not root.path:
        return root.name
    attributes = root.attributes or {}
    method = str(attributes.get("http.request.method") or attributes.get("http.method") or root.name.split(" ", 1)[0])
    path = path_redacted(root.path)
    return f"{method.upper()} {path}" if method.upper() in HTTP_METHODS else path


def _order_numbers(trace_ids: list[str], *, since: datetime) -> dict[str, str]:
    """Each trace's order number: the first order event made under it names it."""
    spellings = [*trace_ids, *(xray_from_otel(t) for t in trace_ids)]
    # No event of these traces is older than their first span: the time index keeps the read short.
    events = (
        order_events()
        .filter(trace_id__in=spellings, time__gte=since - EVENT_CLOCK_SLACK)
        .order_by("position")
        .values_list("trace_id", "data__number")
    )
    numbers: dict[str, str] = {}
    for value, number in events:
        trace_id = otel_from_any(value)
        if trace_id and number:
            numbers.setdefault(trace_id, str(number))
    return numbers


# --- the service map ----------------------------------------------------------------------
