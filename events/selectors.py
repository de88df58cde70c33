"""Reading the log in commit order, and where each consumer stands in it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from events.models import Checkpoint, DeadLetter, Event, Pruned

# (xid, position) of the last event read; (0, 0) is the start of the log.
Mark = tuple[int, int]
START: Mark = (0, 0)


class UnknownPosition(LookupError):
    """No event has this position (never written, or pruned)."""


def _ordered_by_commit() -> bool:
    return connection.vendor == "postgresql"


def events_committed(*, after: Mark = START, source: str | None = None, limit: int | None = None) -> list[Event]:
    """The events after `after`, oldest first, that no reader will ever see anything before.

    A position is taken at INSERT but becomes visible at COMMIT, so a reader keeping
    "position > last" skips an event whose transaction commits after a later one's. On
    PostgreSQL only events of transactions older than every transaction still in flight
    (pg_snapshot_xmin) are read, ordered by (xid, position): whatever commits later sorts
    after what was read. SQLite writes one transaction at a time, so position order is
    commit order there."""
    queryset: QuerySet[Event] = Event.objects.all()
    xid, position = after
    if _ordered_by_commit():
        horizon = RawSQL("pg_snapshot_xmin(pg_current_snapshot())", [])
        queryset = queryset.filter(Q(xid__gt=xid) | Q(xid=xid, position__gt=position), xid__lt=horizon)
        queryset = queryset.order_by("xid", "position")
    else:
        queryset = queryset.filter(position__gt=position).order_by("position")
    if source:
        queryset = queryset.filter(source=source)
    return list(queryset[:limit] if limit else queryset)


def mark_of(event: Event) -> Mark:
    return (event.xid or 0, event.position)


def mark_at(*, position: int) -> Mark:
    """The mark of the event at `position` (0: the start of the log)."""
    if position == 0:
        return START
    event = Event.objects.filter(position=position).only("xid", "position").first()
    if event is None:
        raise UnknownPosition(f"no event at position {position}")
    return mark_of(event)


def mark_end() -> Mark:
    """The end of the log as a reader stands there now: the last event every reader may read
    (what pruning deleted last, for a log with none), so that `events_committed(after=…)` gives
    only what a reader has not been given yet."""
    queryset = Event.objects.only("xid", "position")
    if _ordered_by_commit():
        horizon = RawSQL("pg_snapshot_xmin(pg_current_snapshot())", [])
        last = queryset.filter(xid__lt=horizon).order_by("-xid", "-position").first()
    else:
        last = queryset.order_by("-position").first()
    return mark_of(last) if last else pruned_mark()


def mark_before(*, position: int) -> Mark:
    """A mark that the event at `position` is the next after (in the log's order)."""
    xid, found = mark_at(position=position)
    return (xid, found - 1) if found else START


def pruned_mark() -> Mark:
    """The last event pruning deleted (START: the log still reaches back to its start)."""
    pruned = Pruned.objects.values_list("last_xid", "last_position").first()
    return (pruned[0], pruned[1]) if pruned else START


@dataclass(frozen=True)
class ConsumerState:
    consumer: str
    position: int
    behind: int
    lag_seconds: float
    dead_letters: int
    failures: int
    last_error: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def checkpoint_mark(checkpoint: Checkpoint | None) -> Mark:
    return (checkpoint.last_xid, checkpoint.last_position) if checkpoint else START


def consumers_state(*, consumers: Iterable[str], now: datetime | None = None) -> list[ConsumerState]:
    """Where each consumer is (as `consumer_state`), in a few queries whatever their number: the
    checkpoints and the open dead letters of all of them at once, then one count of what is
    behind for each distinct mark (consumers that are caught up share theirs). The merchant's
    dashboard asks for all of them every few seconds, from the processes that serve shoppers."""
    names = list(consumers)
    checkpoints = {c.consumer: c for c in Checkpoint.objects.filter(consumer__in=names)}
    letters = dict(
        DeadLetter.objects.filter(consumer__in=names, redriven_at__isnull=True)
        .values_list("consumer")
        .annotate(n=Count("pk"))
    )
    now = now or timezone.now()
    behind_at: dict[Mark, dict] = {}
    states = []
    for name in names:
        checkpoint = checkpoints.get(name)
        mark = checkpoint_mark(checkpoint)
        if mark not in behind_at:
            behind_at[mark] = events_after_queryset(after=mark).aggregate(behind=Count("pk"), oldest=Min("time"))
        waiting = behind_at[mark]
        oldest = waiting["oldest"]
        states.append(
            ConsumerState(
                consumer=name,
                position=checkpoint.last_position if checkpoint else 0,
                behind=waiting["behind"],
                lag_seconds=round(max(0.0, (now - oldest).total_seconds()), 3) if oldest else 0.0,
                dead_letters=letters.get(name, 0),
                failures=checkpoint.failures if checkpoint else 0,
                last_error=checkpoint.last_error if checkpoint else "",
            )
        )
    return states


def consumer_state(*, consumer: str, now: datetime | None = None) -> ConsumerState:
    """Where a consumer is: its position, the committed events it has yet to process (and how
    old the oldest is), its open dead letters, and the failures of the event at its head."""
    return consumers_state(consumers=[consumer], now=now)[0]


def events_after_queryset(*, after: Mark) -> QuerySet[Event]:
    """Every event after the mark, committed or not yet (for counting what is behind)."""
    xid, position = after
    if _ordered_by_commit():
        return Event.objects.filter(Q(xid__gt=xid) | Q(xid=xid, position__gt=position))
    return Event.objects.filter(position__gt=position)


@dataclass(frozen=True)
class HeldBack:
    """A transaction in flight on the database server that the log's readers wait on."""

    pid: int
    database: str
    state: str | None  # None: another role's session, whose state PostgreSQL shows its own role only
    seconds: float  # how long the oldest event it holds back has waited

    def as_dict(self) -> dict:
        return self.__dict__.copy()


# How long an event must have waited before the consumers are said to wait on a transaction.
HELD_BACK_AFTER_SECONDS = 5.0


def log_held_back(*, older_than: float | None = None) -> HeldBack | None:
    """The transaction the log's readers wait on, once a committed event has waited on it for
    more than `older_than` seconds. The readers read only below the oldest transaction in
    flight on the whole server, another database's included (transaction ids are the server's),
    so until it ends no event committed after it began is read, and the consumers fall behind
    with no failure of their own. Named by its transaction id, which PostgreSQL shows for every
    role's sessions (their start and state only to the role itself). None on SQLite, or when
    no event waits."""
    if not _ordered_by_commit():
        return None
    wait = HELD_BACK_AFTER_SECONDS if older_than is None else older_than
    horizon = RawSQL("pg_snapshot_xmin(pg_current_snapshot())", [])
    oldest = Event.objects.filter(xid__gte=horizon).aggregate(at=Min("time"))["at"]
    if oldest is None or (timezone.now() - oldest).total_seconds() <= wait:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, coalesce(datname, ''), state FROM pg_stat_activity"
            " WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY age(backend_xid) DESC LIMIT 1"
        )
        row = cursor.fetchone()
    if row is None:  # it ended meanwhile
        return None
    pid, database, state = row
    return HeldBack(
        pid=pid, database=database, state=state, seconds=round((timezone.now() - oldest).total_seconds(), 1)
    )
