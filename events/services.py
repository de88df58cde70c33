"""Writing the log: appending an event inside the caller's transaction, pruning, and retiring
a consumer's checkpoint."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from opentelemetry import trace as otel_trace

from events.models import Checkpoint, Event, Pruned
from events.selectors import START, Mark, checkpoint_mark
from events.snapshots import snapshots_mark

TEXT_FIELDS = {"source": 256, "detail_type": 128, "type": 64, "subtype": 64, "status": 64}


class EventInvalid(ValueError):
    """An event that does not fit the envelope; `field` names the argument at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _checked(
    *, texts: Mapping[str, object], data: object, resources: Iterable[str], trace_id: str | None
) -> tuple[dict, list[str]]:
    for field, value in texts.items():
        if not isinstance(value, str) or not value.strip():
            raise EventInvalid(field, "must be a non-empty string")
        if len(value) > TEXT_FIELDS[field]:
            raise EventInvalid(field, f"must be at most {TEXT_FIELDS[field]} characters")
    if not isinstance(data, Mapping):
        raise EventInvalid("data", "must be a JSON object")
    try:
        # Checked now, not at COMMIT or in a consumer: the caller learns which field is wrong.
        data = json.loads(json.dumps(data))
    except (TypeError, ValueError) as exc:
        raise EventInvalid("data", f"must be JSON-serialisable ({exc})")
    if isinstance(resources, str | bytes | Mapping):
        raise EventInvalid("resources", "must be a list of non-empty strings (ARNs)")
    resources = list(resources)
    if not all(isinstance(r, str) and r for r in resources):
        raise EventInvalid("resources", "must be a list of non-empty strings (ARNs)")
    if trace_id is not None and (not isinstance(trace_id, str) or len(trace_id) > 128):
        raise EventInvalid("trace_id", "must be a string of at most 128 characters")
    return data, resources


def event_append(
    *,
    source: str,
    detail_type: str,
    type: str,  # the envelope's own name for it
    subtype: str,
    status: str,
    data: Mapping,
    resources: Iterable[str] = (),
    trace_id: str | None = None,
) -> Event:
    """Appends one event: a single INSERT in the caller's transaction, so the event exists if
    and only if the change it records was committed. On PostgreSQL the row also records the
    writing transaction's id (the column's default), which readers order by."""
    texts = {"source": source, "detail_type": detail_type, "type": type, "subtype": subtype, "status": status}
    event = _event_checked({**texts, "data": data, "resources": resources, "trace_id": trace_id})
    event.save(force_insert=True)
    return event


def events_append(events: Iterable[Mapping]) -> list[Event]:
    """Appends several events (each the keyword arguments of `event_append`) in one INSERT, in
    their order: positions ascend as they are given. Every one is checked before any is written."""
    rows = [_event_checked(fields) for fields in events]
    return Event.objects.bulk_create(rows) if rows else []


def _event_checked(fields: Mapping) -> Event:
    """An unsaved event of `event_append`'s arguments, checked (EventInvalid names the field)."""
    unknown = set(fields) - {*TEXT_FIELDS, "data", "resources", "trace_id"}
    if unknown:
        raise TypeError(f"not a field of an event: {', '.join(sorted(unknown))}")
    texts = {field: fields.get(field) for field in TEXT_FIELDS}
    trace_id = fields.get("trace_id")
    data, resources = _checked(
        texts=texts, data=fields.get("data"), resources=fields.get("resources", ()), trace_id=trace_id
    )
    if trace_id is None:
        trace_id = trace_id_current()
    return Event(**texts, data=data, resources=resources, trace_id=trace_id)


def trace_id_current() -> str:
    """The trace the caller works in, as X-Ray writes it (`1-5759e988-bd86...`), or ''.
    EventBridge drops its own trace header on delivery: the envelope carries it instead."""
    context = otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    hex_id = otel_trace.format_trace_id(context.trace_id)
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


def _consumers_waited_for(registered: Iterable[str]) -> list[str]:
    """The consumers pruning waits for: those registered in this process, and every consumer
    with a checkpoint, wherever it runs (a relay run as a process of its own is in no other
    process's EVENT_CONSUMERS), until it is retired (`checkpoint_retire`)."""
    return sorted({*registered, *Checkpoint.objects.values_list("consumer", flat=True)})


def _oldest_checkpoint(consumers: Iterable[str]) -> Mark | None:
    """The mark every named consumer has passed; None when there are no consumers."""
    names = list(consumers)
    if not names:
        return None
    marks = {c.consumer: checkpoint_mark(c) for c in Checkpoint.objects.filter(consumer__in=names)}
    # A consumer that never ran has passed nothing.
    return min(marks.get(name, START) for name in names)


def _up_to(events: QuerySet[Event], mark: Mark) -> QuerySet[Event]:
    """The events at or before the mark, in the log's order."""
    xid, position = mark
    if xid:
        return events.filter(Q(xid__lt=xid) | Q(xid=xid, position__lte=position))
    return events.filter(position__lte=position)


def _pruned_record(mark: Mark) -> None:
    """Moves the place the log was pruned up to forward to `mark` (never back)."""
    pruned, _ = Pruned.objects.select_for_update().get_or_create(pk=1)
    if mark > (pruned.last_xid, pruned.last_position):
        pruned.last_xid, pruned.last_position = mark
        pruned.save()


def events_prune(*, now: datetime | None = None, consumers: Iterable[str] | None = None) -> int:
    """Deletes events older than EVENT_RETENTION_DAYS that every consumer, and the latest
    snapshot of every live view, has passed and no dead letter still points at; returns how
    many went, and records the last one (`Pruned`) for the rebuilds.

    Every consumer: those registered here (`consumers`, by default EVENT_CONSUMERS) and every
    other with a checkpoint. Retention is a floor, never a promise to delete: a stalled
    consumer keeps everything from its checkpoint on, so it can always resume."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    registered = settings.EVENT_CONSUMERS if consumers is None else consumers
    with transaction.atomic():
        # Held until the deletion commits: a consumer moved back meanwhile (consumer_reset, a
        # replay) waits for it, then finds what was deleted; one moved back before is read here.
        Pruned.objects.get_or_create(pk=1)
        Pruned.objects.select_for_update().get(pk=1)
        doomed = Event.objects.filter(time__lt=cutoff, dead_letters__isnull=True)
        consumers = _consumers_waited_for(registered)
        passed = _oldest_checkpoint(consumers)
        # A view kept live by one of these consumers is rebuilt from its snapshot: keep what follows it.
        snapshots = snapshots_mark([view for view in settings.EVENT_VIEWS if view in consumers])
        if snapshots is not None:
            passed = min(passed, snapshots) if passed is not None else snapshots
        if passed is not None:
            doomed = _up_to(doomed, passed)
        last = doomed.order_by(F("xid").desc(nulls_last=True), "-position").values_list("xid", "position").first()
        if last is None:
            return 0
        last = (last[0] or 0, last[1])
        deleted, _ = _up_to(Event.objects.filter(position__in=doomed.values("position")), last).delete()
        _pruned_record(last)
    return deleted


class NotRetirable(ValueError):
    """A consumer pruning must go on waiting for: one this process runs, a read model, or
    one with no checkpoint to retire."""


def checkpoint_retire(*, consumer: str) -> Mark:
    """Forgets the checkpoint of a consumer no process runs any more, so that pruning stops
    keeping the events it has not passed; returns where it was.

    The row is deleted rather than marked: a consumer run again after all starts from the
    oldest event left, as a new one does, instead of resuming past events pruned meanwhile.
    A read model is refused: started again on its live rows, it would count events twice."""
    if consumer in settings.EVENT_CONSUMERS:
        raise NotRetirable(
            f"{consumer} is registered in EVENT_CONSUMERS here: take it out of every process's "
            "EVENT_CONSUMERS before retiring it."
        )
    if consumer in settings.EVENT_VIEWS:
        raise NotRetirable(f"{consumer} is a read model: it is not retired (run again, it would count events twice).")
    with transaction.atomic():
        checkpoint = Checkpoint.objects.select_for_update().filter(consumer=consumer).first()
        if checkpoint is None:
            raise NotRetirable(f"no consumer {consumer!r} has a checkpoint.")
        checkpoint.delete()
    return checkpoint_mark(checkpoint)
