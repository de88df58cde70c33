"""Giving a consumer the log's events again: a replay sets it back to just before a position
and runs it (a consumer whose handler takes an event twice as once: the relay, the reorders);
a read model is built again instead (events.snapshots). An event that was the consumer's open
dead letter and that the replay got through is settled with it: a redrive would give it again."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.consumers import RunResult, consumer_handler, consumer_run_all
from events.models import Checkpoint, DeadLetter, Pruned
from events.selectors import Mark, checkpoint_mark, events_committed, mark_before


class NotReplayable(ValueError):
    """A read model's consumer: its rows add each event up, so replaying events it has already
    counted into its live rows would count them twice. It is built again instead, in a fresh
    generation (`events rebuild VIEW`)."""


class ReplayAhead(ValueError):
    """A replay from a position the consumer has not reached: moving its checkpoint forward
    would step over the events between without giving them to it (the relay: never sent).
    A replay only ever moves a consumer back."""


class ReplayPruned(ValueError):
    """A replay (or reset) to a place the log was pruned past: the events after it that it
    would be given again are deleted, so it would skip them without a word."""


def consumer_reset(*, consumer: str, mark: Mark) -> None:
    """Sets the consumer at `mark`; a run holding its lease then loses it, and its place with it."""
    consumer_handler(consumer)
    with transaction.atomic():
        # Pruning holds this row from reading where the consumers stand to its deletion's commit.
        Pruned.objects.get_or_create(pk=1)
        pruned = Pruned.objects.select_for_update().get(pk=1)
        if mark < (pruned.last_xid, pruned.last_position):
            raise ReplayPruned(
                f"{consumer}: the log is pruned up to position {pruned.last_position}; the events after "
                f"position {mark[1]} are no longer all there to be given again."
            )
        Checkpoint.objects.update_or_create(
            consumer=consumer,
            defaults={
                "last_xid": mark[0],
                "last_position": mark[1],
                "failures": 0,
                "last_error": "",
                "claimed_by": "",
                "claimed_until": None,
            },
        )


def consumer_replay(*, consumer: str, from_position: int) -> RunResult:
    """Sets the consumer back to just before the event at `from_position` and runs it. Its
    handler must take an event twice as once (the EventBridge relay's targets deduplicate on
    the event's position, which its detail carries; the reorders consumer too); a read model is refused
    (NotReplayable), and so is a position the consumer has not reached (ReplayAhead)."""
    consumer_handler(consumer)
    if consumer in settings.EVENT_VIEWS:
        raise NotReplayable(
            f"{consumer} is a read model: replaying into its rows would count events twice. "
            f"Build it again from the log instead: events rebuild {consumer}"
        )
    mark = mark_before(position=from_position)
    checkpoint = Checkpoint.objects.filter(consumer=consumer).first()
    if _replay_skips(at=checkpoint_mark(checkpoint), to=mark, from_position=from_position):
        raise ReplayAhead(
            f"{consumer} has not reached position {from_position} (it is at "
            f"{checkpoint.last_position if checkpoint else 0}): replaying from there would skip the events "
            f"between. A replay only moves a consumer back."
        )
    letters = _open_letters_after(consumer=consumer, mark=mark)
    consumer_reset(consumer=consumer, mark=mark)
    result = consumer_run_all(consumer=consumer)
    _letters_replayed(consumer=consumer, letters=letters, from_position=from_position)
    return result


def _open_letters_after(*, consumer: str, mark: Mark) -> dict[int, int]:
    """The consumer's open dead letters whose events a replay from `mark` gives again: id → attempts."""
    letters = DeadLetter.objects.filter(consumer=consumer, redriven_at__isnull=True).values_list(
        "pk", "attempts", "event__xid", "event__position"
    )
    return {pk: attempts for pk, attempts, xid, position in letters if (xid or 0, position) > mark}


def _letters_replayed(*, consumer: str, letters: dict[int, int], from_position: int) -> None:
    """Settles the letters whose events the replay got through: behind the consumer's place
    now, and not failed again (a letter failed again has more attempts)."""
    if not letters:
        return
    at = checkpoint_mark(Checkpoint.objects.filter(consumer=consumer).first())
    passed = [
        pk
        for pk, attempts, xid, position in DeadLetter.objects.filter(
            pk__in=letters, redriven_at__isnull=True
        ).values_list("pk", "attempts", "event__xid", "event__position")
        if (xid or 0, position) <= at and attempts == letters[pk]
    ]
    DeadLetter.objects.filter(pk__in=passed, redriven_at__isnull=True).update(
        redriven_at=timezone.now(), resolution=f"given again by a replay from position {from_position}"
    )


def _replay_skips(*, at: Mark, to: Mark, from_position: int) -> bool:
    """Whether moving a consumer from `at` to `to` (just before the event at `from_position`)
    would step over an event: it would when `to` lies past `at`, unless that event is the
    next one after `at`. No lock is needed: runs only ever move a checkpoint forward, so a
    move that goes no further than `at` goes no further than where a run has taken it since."""
    if to <= at:
        return False
    following = events_committed(after=at, limit=1)
    return not following or following[0].position != from_position
