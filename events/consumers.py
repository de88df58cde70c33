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
writes still commit with the checkpoint). A handler whose work is a call outside the
database (the relay) is marked `external = True` too: its run holds a lease on the checkpoint
instead of a transaction, so that none stays open while it waits on the call (`_run_leased`).
Either way a handler must be idempotent on the event's `uuid` or position (hello-retail's
"last event id" rule), and may carry `wants(event) -> bool`: the events it does not want are
passed without a call or a savepoint (most of a busy log is not any one read model's
business), and says RetryLater when its target, not the event, is at fault (down,
throttled): such a failure never sends the event to the dead letters."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Checkpoint, DeadLetter, Event
from events.selectors import Mark, checkpoint_mark, events_committed, mark_of

logger = logging.getLogger(__name__)


class UnknownConsumer(LookupError):
    pass


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
    try:
        return import_string(path)
    except ImportError as exc:
        raise UnknownConsumer(f"consumer {name!r}: cannot import {path!r} (EVENT_CONSUMERS): {exc}") from None


@dataclass
class RunResult:
    consumer: str
    claimed: bool = True
    processed: int = 0
    dead_lettered: int = 0
    failed: bool = False
    # An external consumer's run whose lease another run took over: that run's place stands.
    lost: bool = False

    def __str__(self) -> str:
        if self.lost:
            return f"{self.consumer}: another run took its claim over and sends its events again"
        if not self.claimed:
            return f"{self.consumer}: another run holds it"
        return f"{self.consumer}: {self.processed} processed, {self.dead_lettered} dead-lettered" + (
            ", stopped at a failure (kept its place)" if self.failed else ""
        )


Outcome = str | RetryLater | None


def traceback_wanted() -> bool:
    """A failure the run retries or dead-letters is one line in the log, with its reason (a
    command's output stays its result); its traceback only when the log is at DEBUG."""
    return logger.isEnabledFor(logging.DEBUG)


def handler_outcomes(handler: Callable, events: list[Event]) -> Iterator[tuple[Event, Outcome]]:
    """Each event tried with its outcome, lazily: a one-event handler is called for the next
    event only when the run goes on, so a run that stops at a failure calls it no further."""
    if getattr(handler, "handles_batches", False):
        try:
            outcomes = list(handler(events))
        except Exception as exc:
            # The whole batch failed (the target unreachable, credentials): no event is to blame.
            reason = exc if isinstance(exc, RetryLater) else RetryLater(f"{type(exc).__name__}: {exc}")
            logger.warning("consumer batch handler failed: %s", reason, exc_info=traceback_wanted())
            outcomes = [reason]
        yield from zip(events, outcomes, strict=False)
        return
    yield from events_each(handler, events)


def events_each(handler: Callable, events: list[Event]) -> Iterator[tuple[Event, Outcome]]:
    """A one-event handler over `events`, lazily, each call in a savepoint of the batch's
    transaction (a failing call's own writes are undone, the batch's are kept), the events it
    does not `want` passed without a call."""
    wants = getattr(handler, "wants", None)
    for event in events:
        outcome: Outcome = None
        try:
            # A `wants` that fails on an event (one not shaped as it expects) is that event's
            # failure, retried and then dead-lettered: raised out of the run, it held the
            # consumer at that event for ever, counted nowhere.
            if wants is None or wants(event):  # the others: not its kind of event, passed at no cost
                # A savepoint: a failing handler's own writes are undone, the batch's are kept.
                with transaction.atomic():
                    handler(event)
        except RetryLater as exc:
            outcome = exc
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "consumer handler failed on event %s: %s", event.position, outcome, exc_info=traceback_wanted()
            )
        yield event, outcome


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
    keeps the place without counting. An external consumer's run holds a lease instead of
    that transaction (`_run_leased`).

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
    limit = batch_size or settings.EVENT_CONSUMER_BATCH
    if getattr(handler, "external", False):
        return _run_leased(consumer=consumer, handler=handler, limit=limit, read=read)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.select_for_update(skip_locked=True).filter(consumer=consumer).first()
        if checkpoint is None:
            result.claimed = False
            return result
        events = _batch(checkpoint, limit=limit, read=read)
        letters_write(_take(checkpoint, result, handler_outcomes(handler, events) if events else ()))
        checkpoint.save()
    return result


def _batch(checkpoint: Checkpoint, *, limit: int, read: Read | None) -> list[Event]:
    at = checkpoint_mark(checkpoint)
    # A read made at this mark was committed then: a prefix of what is committed now. A
    # checkpoint another run moved since is read again from where it is.
    fresh = read is not None and read[0] == at
    return read[1][:limit] if fresh else events_committed(after=at, limit=limit)


def _take(checkpoint: Checkpoint, result: RunResult, outcomes: Iterable[tuple[Event, Outcome]]) -> list[DeadLetter]:
    """A run's outcomes, in order, into its checkpoint and result, up to the first that keeps
    the consumer in place (no event after it is tried); returns the dead letters to write
    with the checkpoint."""
    letters = []
    for event, error in outcomes:
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
            letters.append(
                DeadLetter(consumer=checkpoint.consumer, event=event, error=error, attempts=checkpoint.failures)
            )
            result.dead_lettered += 1
        checkpoint.last_xid, checkpoint.last_position = mark_of(event)
        checkpoint.failures, checkpoint.last_error = 0, ""
    return letters


def letters_write(letters: list[DeadLetter]) -> None:
    """A run's dead letters. An event that is already the consumer's open letter (a replay gave
    it again, and it failed again) keeps its one letter, its attempts and error brought up to
    date: two would show one bad event twice, and redriving both would give it twice."""
    if not letters:
        return
    known = {
        letter.event_id: letter
        for letter in DeadLetter.objects.filter(
            consumer=letters[0].consumer, redriven_at__isnull=True, event_id__in=[letter.event_id for letter in letters]
        )
    }
    for letter in letters:
        if (open_letter := known.get(letter.event_id)) is not None:
            # Added in the database: a redrive of the letter meanwhile adds its own attempt.
            DeadLetter.objects.filter(pk=open_letter.pk).update(
                attempts=F("attempts") + letter.attempts, error=letter.error
            )
    DeadLetter.objects.bulk_create([letter for letter in letters if letter.event_id not in known])


def _run_leased(*, consumer: str, handler: Callable, limit: int, read: Read | None) -> RunResult:
    """A run of an external consumer, in three steps with no transaction open across the
    call: the checkpoint claimed with a lease (one short transaction), the events given to
    the handler, and the checkpoint moved (a second one) if the lease is still this run's.
    Readers of the log read only below the oldest transaction in flight: one kept open while
    EventBridge is slow or out of reach would hide every event committed meanwhile from all
    of them, read models and `events tail` alike.

    A run that lost its lease (it outlasted it and another run took over, or a replay reset
    the consumer) leaves the checkpoint to the other run, which gives the same events again:
    such a consumer's delivery is at least once, and its targets deduplicate (the relay's on
    `meta_data.position`)."""
    holder = f"{os.getpid()}:{uuid.uuid4().hex[:12]}:{socket.gethostname()}"[:100]
    checkpoint = _lease_claim(consumer=consumer, holder=holder)
    if checkpoint is None:
        return RunResult(consumer=consumer, claimed=False)
    result = RunResult(consumer=consumer)
    try:
        events = _batch(checkpoint, limit=limit, read=read)
        letters = _take(checkpoint, result, handler_outcomes(handler, events) if events else ())
    except BaseException:
        _lease_release(consumer=consumer, holder=holder)
        raise
    with transaction.atomic():
        kept = Checkpoint.objects.filter(consumer=consumer, claimed_by=holder).update(
            last_xid=checkpoint.last_xid,
            last_position=checkpoint.last_position,
            failures=checkpoint.failures,
            last_error=checkpoint.last_error,
            claimed_by="",
            claimed_until=None,
            updated_at=timezone.now(),
        )
        if not kept:
            logger.warning("consumer %s lost its claim mid-run: its events are given again", consumer)
            return RunResult(consumer=consumer, claimed=False, lost=True)
        letters_write(letters)
    return result


def _lease_claim(*, consumer: str, holder: str) -> Checkpoint | None:
    """The consumer's checkpoint, claimed by `holder` for EVENT_CONSUMER_LEASE_SECONDS on the
    database's clock; None while another run's lease lasts. One conditional UPDATE: of two
    runs claiming at once, the second finds the lease taken."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=Now())
    until = Now() + timedelta(seconds=settings.EVENT_CONSUMER_LEASE_SECONDS)
    if not Checkpoint.objects.filter(free, consumer=consumer).update(claimed_by=holder, claimed_until=until):
        return None
    return Checkpoint.objects.filter(consumer=consumer, claimed_by=holder).first()


def _lease_release(*, consumer: str, holder: str) -> None:
    """Ends `holder`'s lease before it runs out (its run failed): the next run may start at
    once. One that cannot be ended now (the database restarting) ends when it runs out."""
    try:
        Checkpoint.objects.filter(consumer=consumer, claimed_by=holder).update(claimed_by="", claimed_until=None)
    except DatabaseError:
        logger.warning("claim on consumer %s not released; its lease will end", consumer, exc_info=True)


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
