"""Named consumers of the log: a registry (EVENT_CONSUMERS), and runs that process a batch
at least once, keep their place, and dead-letter what keeps failing.

A handler is a dotted path to a callable, loaded by name so this app imports no other. It
either takes one event (`handle(event) -> None`, raising on failure), run in a savepoint of
the batch's transaction, so its writes to this database commit with the checkpoint: exactly
once in effect. Or it is marked `handles_batches = True` and takes the whole batch
(`handle(events) -> list[str | None]`, one outcome per event it tried, None for done, in
order; events past the list are left for the next run): for side effects outside the
database, like the relay to EventBridge, which are then at least once, or for a handler that
shares work across the batch and runs each event through `events_each` (a read model: its
writes still commit with the checkpoint). Either way a handler
must be idempotent on the event's `uuid` or position (hello-retail's "last event id" rule),
and may carry `wants(event) -> bool`: the events it does not want are passed without a call
or a savepoint (most of a busy log is not any one read model's business),
and says RetryLater when its target, not the event, is at fault (down, throttled): such a
failure never sends the event to the dead letters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Checkpoint, DeadLetter, Event
from events.selectors import Mark, checkpoint_mark, events_committed, mark_before, mark_of

logger = logging.getLogger(__name__)


class UnknownConsumer(LookupError):
    pass


class NotReplayable(ValueError):
    """A read model's consumer: its rows add each event up, so replaying events it has already
    counted into its live rows would count them twice. It is built again instead, in a fresh
    generation (`events rebuild VIEW`)."""


class RetryLater(Exception):
    """The way to the consumer's target is blocked (down, throttled), not the event: the
    consumer keeps its place without counting it toward dead-lettering. A batch handler
    raising anything, or giving this as an event's outcome, means the same."""


def consumer_names() -> list[str]:
    return sorted(settings.EVENT_CONSUMERS)


def consumer_handler(name: str) -> Callable:
    try:
        path = settings.EVENT_CONSUMERS[name]
    except KeyError:
        known = ", ".join(consumer_names()) or "none"
        raise UnknownConsumer(f"unknown consumer {name!r} (registered: {known})")
    return import_string(path)


@dataclass
class RunResult:
    consumer: str
    claimed: bool = True
    processed: int = 0
    dead_lettered: int = 0
    failed: bool = False

    def __str__(self) -> str:
        if not self.claimed:
            return f"{self.consumer}: another run holds it"
        return f"{self.consumer}: {self.processed} processed, {self.dead_lettered} dead-lettered" + (
            ", stopped at a failure (kept its place)" if self.failed else ""
        )


Outcome = str | RetryLater | None


def _outcomes(handler: Callable, events: list[Event]) -> Iterator[tuple[Event, Outcome]]:
    """Each event tried with its outcome, lazily: a one-event handler is called for the next
    event only when the run goes on, so a run that stops at a failure calls it no further."""
    if getattr(handler, "handles_batches", False):
        try:
            outcomes = list(handler(events))
        except Exception as exc:
            # The whole batch failed (the target unreachable, credentials): no event is to blame.
            logger.warning("consumer batch handler failed", exc_info=True)
            outcomes = [exc if isinstance(exc, RetryLater) else RetryLater(f"{type(exc).__name__}: {exc}")]
        yield from zip(events, outcomes, strict=False)
        return
    yield from events_each(handler, events)


def events_each(handler: Callable, events: list[Event]) -> Iterator[tuple[Event, Outcome]]:
    """A one-event handler over `events`, lazily, each call in a savepoint of the batch's
    transaction (a failing call's own writes are undone, the batch's are kept), the events it
    does not `want` passed without a call."""
    wants = getattr(handler, "wants", None)
    for event in events:
        if wants is not None and not wants(event):
            yield event, None  # not the consumer's kind of event: passed, at no cost
            continue
        try:
            # A savepoint: a failing handler's own writes are undone, the batch's are kept.
            with transaction.atomic():
                handler(event)
        except RetryLater as exc:
            yield event, exc
        except Exception as exc:
            logger.warning("consumer handler failed on event %s", event.position, exc_info=True)
            yield event, f"{type(exc).__name__}: {exc}"
        else:
            yield event, None


# Events a caller read for a consumer: every event committed after the mark when it read them.
Read = tuple[Mark, list[Event]]


def consumer_run(*, consumer: str, batch_size: int | None = None, read: Read | None = None) -> RunResult:
    """Processes the next batch of committed events for one consumer.

    The checkpoint row is claimed with SKIP LOCKED, so a second run of the same consumer
    returns at once instead of processing the same events. Processing and advancing the
    checkpoint share one transaction: a run that dies mid-batch (an exception, a killed
    process) leaves the checkpoint where it was, and its writes are undone with it. A failed
    event keeps the consumer in place for the next run; after EVENT_CONSUMER_MAX_ATTEMPTS
    failures it goes to the consumer's dead letters and the consumer moves on; a RetryLater
    keeps the place without counting.

    `read`: the events after a mark that the caller already read (`consumers_read`, one read
    for every consumer); used when the claimed checkpoint is still at that mark."""
    handler = consumer_handler(consumer)
    result = RunResult(consumer=consumer)
    # Nothing new since the checkpoint (a consumer's usual state between bursts): said by two
    # reads, with no lock taken and nothing written, so an idle pass costs no commit.
    if read is None:
        mark = Checkpoint.objects.filter(consumer=consumer).values_list("last_xid", "last_position").first()
        if mark is None:
            Checkpoint.objects.get_or_create(consumer=consumer)  # its first run: it starts at the log's start
        elif not events_committed(after=mark, limit=1):
            return result
    elif not read[1]:
        return result
    with transaction.atomic():
        checkpoint = Checkpoint.objects.select_for_update(skip_locked=True).filter(consumer=consumer).first()
        if checkpoint is None:
            result.claimed = False
            return result
        limit = batch_size or settings.EVENT_CONSUMER_BATCH
        at = checkpoint_mark(checkpoint)
        # A read made at this mark was committed then: a prefix of what is committed now. A
        # checkpoint another run moved since is read again from where it is.
        fresh = read is not None and read[0] == at
        events = read[1][:limit] if fresh else events_committed(after=at, limit=limit)
        for event, error in _outcomes(handler, events) if events else ():
            if error is None:
                result.processed += 1
            elif isinstance(error, RetryLater):
                checkpoint.last_error = str(error)[:2000]
                result.failed = True
                break
            else:
                checkpoint.failures += 1
                checkpoint.last_error = error[:2000]
                if checkpoint.failures < settings.EVENT_CONSUMER_MAX_ATTEMPTS:
                    result.failed = True
                    break
                DeadLetter.objects.create(consumer=consumer, event=event, error=error, attempts=checkpoint.failures)
                result.dead_lettered += 1
            checkpoint.last_xid, checkpoint.last_position = mark_of(event)
            checkpoint.failures, checkpoint.last_error = 0, ""
        checkpoint.save()
    return result


def consumers_read(names: list[str]) -> dict[str, Read] | None:
    """For each consumer with a checkpoint, the events after it, from one read of the log for
    all of them: two queries, where each consumer's own look costs two and its batch one more.
    None when the read fills a batch (a backlog: each consumer reads its own batch)."""
    marks = {
        name: (xid or 0, position)
        for name, xid, position in Checkpoint.objects.filter(consumer__in=names).values_list(
            "consumer", "last_xid", "last_position"
        )
    }
    if not marks:
        return None
    limit = settings.EVENT_CONSUMER_BATCH
    events = events_committed(after=min(marks.values()), limit=limit)
    if len(events) >= limit:
        return None
    return {name: (mark, [event for event in events if mark_of(event) > mark]) for name, mark in marks.items()}


def consumer_run_all(*, consumer: str, batch_size: int | None = None, rounds: int = 1000) -> RunResult:
    """Runs one consumer until it has caught up, stopped at a failure, or lost its claim."""
    total = RunResult(consumer=consumer)
    for _ in range(rounds):
        result = consumer_run(consumer=consumer, batch_size=batch_size)
        total.processed += result.processed
        total.dead_lettered += result.dead_lettered
        total.claimed, total.failed = result.claimed, result.failed
        if not result.claimed or result.failed or not (result.processed or result.dead_lettered):
            break
    return total


def consumer_reset(*, consumer: str, mark: Mark) -> None:
    consumer_handler(consumer)
    Checkpoint.objects.update_or_create(
        consumer=consumer,
        defaults={"last_xid": mark[0], "last_position": mark[1], "failures": 0, "last_error": ""},
    )


def consumer_replay(*, consumer: str, from_position: int) -> RunResult:
    """Sets the consumer back to just before the event at `from_position` and runs it. Its
    handler must take an event twice as once (the EventBridge relay's targets deduplicate on
    the event's position, which its detail carries; the reorders consumer too); a read model is refused
    (NotReplayable)."""
    consumer_handler(consumer)
    if consumer in settings.EVENT_VIEWS:
        raise NotReplayable(
            f"{consumer} is a read model: replaying into its rows would count events twice. "
            f"Build it again from the log instead: events rebuild {consumer}"
        )
    consumer_reset(consumer=consumer, mark=mark_before(position=from_position))
    return consumer_run_all(consumer=consumer)


def dead_letter_redrive(*, dead_letter_id: int, user=None) -> bool:
    """Gives one dead-lettered event to its consumer again; True once it was processed."""
    with transaction.atomic():
        letter = (
            DeadLetter.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=dead_letter_id, redriven_at__isnull=True)
            .first()
        )
        if letter is None:
            return False
        try:
            handler = consumer_handler(letter.consumer)
            outcome = next(_outcomes(handler, [letter.event]), None)
            error = (str(outcome[1]) if outcome[1] is not None else None) if outcome else "not taken"
        except UnknownConsumer as exc:
            error = str(exc)
        if error is None:
            letter.redriven_at, letter.redriven_by = timezone.now(), user
        else:
            letter.attempts += 1
            letter.error = error
        letter.save()
        return error is None
