"""Reading the span store: finding traces (by trace id, order number or URL path), one
trace's waterfall, and the service map computed from the spans (a list's summaries of
traces: tracing.summaries)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Min
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracing.ids import otel_from_any, xray_from_otel
from tracing.models import Span, SpanKind

ORDER_NUMBER = re.compile(r"^[A-Z]\d{3,}$")
EDGE = "edge"
QUEUE = "queue"
STORES = ("postgresql", "redis", "sqlite")


@dataclass
class WaterfallRow:
    span: Span
    depth: int
    offset_ms: float
    duration_ms: float
    left_pct: float
    width_pct: float

    @property
    def levels(self) -> range:
        """One item a level deep: the page indents the span by a spacer for each."""
        return range(self.depth)

    def as_dict(self) -> dict:
        s = self.span
        return {
            "span_id": s.span_id,
            "parent_id": s.parent_id,
            "service": s.service,
            "name": s.name,
            "kind": s.kind,
            "depth": self.depth,
            "offset_ms": round(self.offset_ms, 3),
            "duration_ms": round(self.duration_ms, 3),
            "error": s.error,
            "attributes": s.attributes,
        }


@dataclass
class Trace:
    trace_id: str
    rows: list[WaterfallRow]
    duration_ms: float

    @property
    def xray_id(self) -> str:
        return xray_from_otel(self.trace_id)

    @property
    def services(self) -> list[str]:
        return sorted({row.span.service for row in self.rows})

    def as_dict(self) -> dict:
        return {
            "trace_id": self.trace_id,
            "xray_trace_id": self.xray_id,
            "duration_ms": round(self.duration_ms, 3),
            "services": self.services,
            "spans": [row.as_dict() for row in self.rows],
        }


def trace_ids_find(query: str, *, limit: int = 50) -> list[str]:
    """Trace ids for a trace id (either spelling), an order number, or a URL path (prefix),
    newest first."""
    query = query.strip()
    if not query:
        return []
    if (trace_id := otel_from_any(query)) is not None:
        return _stored([trace_id])
    if ORDER_NUMBER.match(query):
        return _stored(_trace_ids_of_order(query))
    if query.startswith("/"):
        rows = (
            Span.objects.filter(kind=SpanKind.SERVER, path__startswith=query)
            .values("trace_id")
            .annotate(first=Min("start"))
            .order_by("-first")[:limit]
        )
        return [row["trace_id"] for row in rows]
    return []


def _stored(trace_ids: list[str]) -> list[str]:
    """The ones with spans stored: an order's trace, or one typed in, may not have been
    sampled (most are not), or its spans were pruned."""
    kept = set(Span.objects.filter(trace_id__in=trace_ids).values_list("trace_id", flat=True).distinct())
    return [trace_id for trace_id in trace_ids if trace_id in kept]


def order_events():
    """The log's events of orders: each carries the trace of the request that made it, which
    is how an order and its traces find each other."""
    from events.models import Event

    return Event.objects.filter(data__has_key="number").exclude(trace_id="")


def _trace_ids_of_order(number: str) -> list[str]:
    found = []
    for value in order_events().filter(data__number=number).values_list("trace_id", flat=True):
        trace_id = otel_from_any(value)
        if trace_id and trace_id not in found:
            found.append(trace_id)
    return found


def trace_get(trace_id: str) -> Trace | None:
    """One trace's spans as a waterfall: each under its parent, in start order."""
    spans = list(Span.objects.filter(trace_id=trace_id).order_by("start", "id"))
    if not spans:
        return None
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[Span]] = {}
    roots = []
    for span in spans:
        if span.parent_id and span.parent_id in by_id and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    begin = min(s.start for s in spans)
    end = max(s.start + timedelta(microseconds=s.duration_us) for s in spans)
    total_ms = max((end - begin).total_seconds() * 1000, 0.001)
    rows: list[WaterfallRow] = []

    def walk(span: Span, depth: int) -> None:
        offset = (span.start - begin).total_seconds() * 1000
        duration = span.duration_us / 1000
        rows.append(
            WaterfallRow(span, depth, offset, duration, 100 * offset / total_ms, max(100 * duration / total_ms, 0.3))
        )
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return Trace(trace_id, rows, total_ms)


@dataclass
class MapEdge:
    source: str
    target: str
    durations_us: list[int] = field(default_factory=list)
    errors: int = 0

    @property
    def calls(self) -> int:
        return len(self.durations_us)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.durations_us)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] / 1000 if ordered else 0.0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "calls": self.calls,
            "errors": self.errors,
            "p99_ms": round(self.p99_ms, 3),
        }


def service_map(*, since: datetime | None = None, trace_ids: list[str] | None = None) -> list[MapEdge]:
    """Each hop seen in the spans: edge → service (a request that came through the edge),
    service → postgresql/redis (their client spans), service → queue (a publish), queue →
    worker (a task run), service → service (an HTTP call, as its caller waited for it)."""
    spans = Span.objects.all()
    if since is not None:
        spans = spans.filter(start__gte=since)
    if trace_ids is not None:
        spans = spans.filter(trace_id__in=trace_ids)
    fields = ("trace_id", "span_id", "parent_id", "parent_remote", "service", "kind", "duration_us", "error", "peer")
    status = Coalesce(KT("attributes__http.status_code"), KT("attributes__http.response.status_code"))
    rows = list(spans.values(*fields, http_status=status))
    by_key = {(r["trace_id"], r["span_id"]): r for r in rows}
    answers = {(r["trace_id"], r["parent_id"]): r for r in rows if r["kind"] == SpanKind.SERVER and r["parent_id"]}
    # Which service answers at each address, from the calls it answered: a call it never heard
    # (refused, timed out on connecting) is still its hop's, an error there.
    services_at = {}
    for row in rows:
        answer = answers.get((row["trace_id"], row["span_id"])) if row["kind"] == SpanKind.CLIENT else None
        if answer is not None and row["peer"]:
            services_at[row["peer"]] = answer["service"]
    edges: dict[tuple[str, str], MapEdge] = {}

    def add(source: str, target: str, row: dict, *, error: bool | None = None) -> None:
        edge = edges.setdefault((source, target), MapEdge(source, target))
        edge.durations_us.append(row["duration_us"])
        edge.errors += bool(row["error"] if error is None else error)

    for row in rows:
        parent = by_key.get((row["trace_id"], row["parent_id"])) if row["parent_id"] else None
        kind = row["kind"]
        if kind == SpanKind.SERVER:
            if parent is None and row["parent_remote"]:
                add(EDGE, row["service"], row)
            elif parent is not None and parent["kind"] != SpanKind.CLIENT and parent["service"] != row["service"]:
                add(parent["service"], row["service"], row)
        elif kind == SpanKind.CONSUMER:
            add(QUEUE, row["service"], row)
        elif kind == SpanKind.PRODUCER:
            # The outbox's relay publishes for the request that accepted the order, from a
            # worker's process, under that request's span: the hop is the request's service's.
            remote = parent is not None and row["parent_remote"]
            add(parent["service"] if remote else row["service"], QUEUE, row)
        elif kind == SpanKind.CLIENT and row["peer"] in STORES:
            add(row["service"], row["peer"], row)
        elif kind == SpanKind.CLIENT:
            _call_add(add, row, answers.get((row["trace_id"], row["span_id"])), services_at)
    order = {EDGE: 0, "monolith": 1, "shop": 1, "hotpath": 1, QUEUE: 3, "worker": 4, "legacy-api": 5}
    return sorted(edges.values(), key=lambda e: (order.get(e.source, 2), order.get(e.target, 2), e.target))


def _call_add(add, call: dict, answer: dict | None, services_at: dict[str, str]) -> None:
    """An HTTP call's hop, timed as the caller waited (a legacy API slow to take a request
    shows here, not in its own span) and failed where no answer came or the callee failed;
    an answer the caller acts on (a card declined, out of stock) is no error of the hop."""
    target = answer["service"] if answer is not None else services_at.get(call["peer"], call["peer"])
    if not target or target == call["service"]:
        return
    status = int(call["http_status"]) if str(call["http_status"] or "").isdigit() else 0
    failed = call["error"] and not 400 <= status < 500
    add(call["service"], target, call, error=failed or bool(answer is not None and answer["error"]))


def since_default() -> datetime:
    return timezone.now() - timedelta(hours=1)
