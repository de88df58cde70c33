"""Snapshots and rebuilds of the read models fed by the log (Gilt's rule: any view can be built
again from its latest snapshot plus a replay of the events after it).

A view is registered in EVENT_VIEWS by name (the name of the consumer that keeps it live) and
dotted path, so this app imports none of them. It keeps its rows in generations: the live one,
which its consumer writes, and fresh ones a rebuild fills beside it. A view offers:

    state(generation=None) -> dict     its figures, JSON, in a form two builds compare equal
    generation_new() -> int            a fresh, empty generation
    load(state, generation)            a snapshot's state written into a generation
    apply(event, generation)           one event folded into a generation
    swap(generation)                   the generation made live, the old one dropped
    drop(generation)                   a generation thrown away

A rebuild fills a fresh generation while the live one keeps serving, then, holding the view's
consumer checkpoint (so no batch of the consumer runs meanwhile), folds in the last events and
makes it live in the same transaction: a reader sees the old figures or the new, never none.

Once the log was pruned it no longer reaches back to its start: a build from the start then
starts from the view's latest snapshot (pruning never passes it), or is refused. A view holds
every event of the log but its open dead letters: a rebuild that swaps in settles the dead
letters whose events it folded in (a redrive would count them twice), and one that fails on
any other event swaps nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Checkpoint, DeadLetter, Event, Snapshot
from events.selectors import START, Mark, checkpoint_mark, events_committed, mark_of, pruned_mark

logger = logging.getLogger(__name__)

BATCH = 500
# Differences a check prints for one view at most.
SHOWN_DIFFERENCES = 20


class UnknownView(LookupError):
    pass


class LogPruned(LookupError):
    """The log was pruned past where a build would start, and no snapshot of the view covers
    what was pruned: built from what is left, the view would miss those events."""


class RebuildIncomplete(RuntimeError):
    """A rebuild failed to fold in events the live view holds: it swapped nothing in."""


def view_names() -> list[str]:
    return sorted(settings.EVENT_VIEWS)


def view_get(name: str):
    try:
        path = settings.EVENT_VIEWS[name]
    except KeyError:
        known = ", ".join(view_names()) or "none"
        raise UnknownView(f"unknown view {name!r} (registered: {known})")
    found = import_string(path)
    return found() if isinstance(found, type) else found


def _checkpoint_locked(name: str) -> Checkpoint:
    """The view's consumer checkpoint, locked: waits for a batch of the consumer to finish."""
    Checkpoint.objects.get_or_create(consumer=name)
    return Checkpoint.objects.select_for_update().get(consumer=name)


def snapshot_latest(*, view: str) -> Snapshot | None:
    return Snapshot.objects.filter(view=view).order_by("-created_at", "-pk").first()


def snapshot_take(*, view: str) -> Snapshot:
    """Stores the live view's state with the place in the log it reflects."""
    model = view_get(view)
    with transaction.atomic():
        checkpoint = _checkpoint_locked(view)
        return Snapshot.objects.create(
            view=view, last_xid=checkpoint.last_xid, last_position=checkpoint.last_position, state=model.state()
        )


@dataclass
class Build:
    generation: int
    mark: Mark
    # Where it started: the snapshot's place, or START for the start of the log.
    start: Mark = START
    from_snapshot: bool = False
    applied: int = 0
    skipped: list[int] = field(default_factory=list)
    # Dead letters of the view settled by the swap: their events are in the rebuilt view.
    resolved: int = 0


def _fold(model, build: Build, events: list[Event], *, until: Mark | None = None) -> bool:
    """Folds events into the build in order; False once one lies past `until`. A view that folds
    a whole batch at once (`fold_batch`, as its consumer does) is given the batch in one
    savepoint; when that fails, the batch is folded one event at a time, so the event that
    fails is the one skipped."""
    within = [event for event in events if until is None or mark_of(event) <= until]
    if within and _fold_whole(model, build, within):
        return len(within) == len(events)
    for event in events:
        if until is not None and mark_of(event) > until:
            return False
        try:
            with transaction.atomic():
                model.apply(event, build.generation)
            build.applied += 1
        except Exception as exc:
            # The live consumer dead-letters such an event too; a rebuild swaps in only if it has.
            logger.warning(
                "view rebuild skipped event %s: %s: %s",
                event.position,
                type(exc).__name__,
                exc,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            build.skipped.append(event.position)
        build.mark = mark_of(event)
    return True


def _fold_whole(model, build: Build, events: list[Event]) -> bool:
    fold_batch = getattr(model, "fold_batch", None)
    if fold_batch is None:
        return False
    try:
        with transaction.atomic():
            fold_batch(events, build.generation)
    except Exception:
        return False
    build.applied += len(events)
    build.mark = mark_of(events[-1])
    return True


def _start(view: str, *, from_snapshot: bool) -> Snapshot | None:
    """The snapshot a build starts from, or None for the start of the log. Once the log no
    longer reaches back to its start, a build from the start starts from the latest snapshot
    instead; when no snapshot covers what was pruned, the build is refused (LogPruned)."""
    pruned = pruned_mark()
    if not from_snapshot and pruned == START:
        return None
    snapshot = snapshot_latest(view=view)
    if pruned != START and (snapshot is None or (snapshot.last_xid, snapshot.last_position) < pruned):
        raise LogPruned(
            f"{view} cannot be built again from the log: it is pruned up to position {pruned[1]} and no "
            f"snapshot of {view} reaches that far (a rebuild, --from-snapshot or not, would miss those events)."
        )
    return snapshot


def _redriven_since(view: str, snapshot: Snapshot) -> list[DeadLetter]:
    """The view's dead letters redriven (not settled by a rebuild) after the snapshot was
    taken whose events lie at or before its place, in the log's order. A redrive of a view's
    letter holds the view's checkpoint, as a snapshot does: the two never overlap."""
    letters = DeadLetter.objects.select_related("event").filter(
        consumer=view, redriven_at__gte=snapshot.created_at, resolution=""
    )
    at = (snapshot.last_xid, snapshot.last_position)
    return sorted((letter for letter in letters if mark_of(letter.event) <= at), key=lambda kept: mark_of(kept.event))


def _build(model, *, view: str, from_snapshot: bool, until: Mark | None = None) -> Build:
    """A fresh generation filled from the snapshot (or nothing) and the events after it, in
    batches of their own transactions, up to `until` or the end of the log."""
    snapshot = _start(view, from_snapshot=from_snapshot)
    build = Build(generation=model.generation_new(), mark=START)
    if snapshot is not None:
        with transaction.atomic():
            model.load(snapshot.state, build.generation)
            # Dead letters open when the snapshot was taken and redriven since: the live view
            # holds their events, the snapshot does not, and they lie before its place.
            for letter in _redriven_since(view, snapshot):
                model.apply(letter.event, build.generation)
                build.applied += 1
        build.mark = build.start = (snapshot.last_xid, snapshot.last_position)
        build.from_snapshot = True
    while True:
        with transaction.atomic():
            events = events_committed(after=build.mark, limit=BATCH)
            going_on = _fold(model, build, events, until=until)
        if not going_on or len(events) < BATCH:
            return build


def _still_whole(view: str, build: Build) -> None:
    """Refuses a build that pruning passed the start of while it read the log: the events it
    had not read yet may be gone."""
    if pruned_mark() > build.start:
        raise LogPruned(f"{view}: the log was pruned while it was read for the build; run it again.")


def _dead_letters_within(view: str, build: Build) -> list[DeadLetter]:
    """The view's open dead letters whose events the build went through, locked: a redrive of
    one waits for the swap, and then finds it settled."""
    letters = (
        DeadLetter.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(consumer=view, redriven_at__isnull=True)
        .order_by("pk")
    )
    return [letter for letter in letters if build.start < mark_of(letter.event) <= build.mark]


def _dead_letters_settle(view: str, build: Build, letters: list[DeadLetter]) -> int:
    """Marks the dead letters whose events the build folded in as settled, saying why."""
    folded = [letter.pk for letter in letters if letter.event_id not in build.skipped]
    return DeadLetter.objects.filter(pk__in=folded).update(
        redriven_at=timezone.now(), resolution=f"folded in by a rebuild of {view}: a redrive would count it twice"
    )


def view_rebuild(*, view: str, from_snapshot: bool = False) -> Build:
    """Builds the view again beside the live one and swaps it in, with its consumer's place
    moved to the last event it folded in, and its dead letters whose events it folded in
    settled. Events it failed to fold in are left out only when they are dead letters of the
    view still open (the live view lacks them too); any other failure swaps nothing
    (RebuildIncomplete)."""
    model = view_get(view)
    build = _build(model, view=view, from_snapshot=from_snapshot)
    try:
        with transaction.atomic():
            checkpoint = _checkpoint_locked(view)
            while events := events_committed(after=build.mark, limit=BATCH):
                _fold(model, build, events)
            _still_whole(view, build)
            letters = _dead_letters_within(view, build)
            failed = sorted(set(build.skipped) - {letter.event_id for letter in letters})
            if failed:
                raise RebuildIncomplete(
                    f"{view}: not swapped in: the rebuild failed to fold in events {failed} (the warnings "
                    "say why); the live view is unchanged."
                )
            model.swap(build.generation)
            build.resolved = _dead_letters_settle(view, build, letters)
            if build.mark > checkpoint_mark(checkpoint):
                checkpoint.last_xid, checkpoint.last_position = build.mark
                checkpoint.failures, checkpoint.last_error = 0, ""
                checkpoint.save()
    except BaseException:
        model.drop(build.generation)
        raise
    return build


def _differences(live: dict, rebuilt: dict) -> list[str]:
    lines = []
    for key in sorted(set(live) | set(rebuilt)):
        if live.get(key) != rebuilt.get(key):
            lines.append(f"{key}: live {live.get(key)!r}, rebuilt {rebuilt.get(key)!r}")
    return lines


def view_check(*, view: str, from_snapshot: bool = False) -> list[str]:
    """Builds the view beside the live one up to exactly the live one's place, compares the
    two, and throws the build away; returns the differences (none: the view is right)."""
    model = view_get(view)
    checkpoint = Checkpoint.objects.filter(consumer=view).first()
    build = _build(model, view=view, from_snapshot=from_snapshot, until=checkpoint_mark(checkpoint))
    try:
        with transaction.atomic():
            # The consumer may have moved on meanwhile: catch the build up to where it is now.
            live_mark = checkpoint_mark(_checkpoint_locked(view))
            while build.mark < live_mark:
                events = events_committed(after=build.mark, limit=BATCH)
                if not events or not _fold(model, build, events, until=live_mark):
                    break
            _still_whole(view, build)
            return _differences(model.state(), model.state(build.generation))
    finally:
        model.drop(build.generation)


def views_check(*, from_snapshot: bool = False, views: list[str] | None = None) -> dict[str, list[str]]:
    """Every registered view (or those named) checked; the differences of each (empty: agree)."""
    return {name: view_check(view=name, from_snapshot=from_snapshot) for name in views or view_names()}


def snapshots_mark(views: list[str]) -> Mark | None:
    """The place every named view's latest snapshot has passed (START when one has none);
    None when no view is named."""
    if not views:
        return None
    marks = []
    for view in views:
        snapshot = snapshot_latest(view=view)
        marks.append((snapshot.last_xid, snapshot.last_position) if snapshot else START)
    return min(marks)
