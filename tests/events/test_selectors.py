"""Reading in commit order: two real transactions on two connections take positions in one
order and commit in the other, and a consumer reading between the commits skips nothing."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from events.consumers import consumer_run, consumer_run_all
from events.models import Checkpoint, DeadLetter, Event
from events.selectors import START, consumers_state, events_committed, mark_at, mark_before, mark_of
from tests.conftest import eventually
from tests.events import handlers
from tests.events.conftest import sale_event, settled

pytestmark = pytest.mark.django_db(transaction=True)


class Writer:
    """One transaction on its own connection (its own thread), told step by step what to do."""

    def __init__(self):
        self.steps: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.open = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with transaction.atomic():
                while (step := self.steps.get()) is not None:
                    self.results.put(step())
            self.results.put("committed")
        except Exception as exc:
            self.results.put(exc)
        finally:
            connection.close()

    def do(self, step: Callable):
        self.steps.put(step)
        result = self.results.get(timeout=60)
        if isinstance(result, Exception):
            raise result
        return result

    def commit(self) -> None:
        self.open = False
        self.steps.put(None)
        assert self.results.get(timeout=60) == "committed"
        self.thread.join(timeout=60)


@pytest.fixture
def writers():
    started: list[Writer] = []

    def start() -> Writer:
        started.append(Writer())
        return started[-1]

    yield start
    for writer in started:  # a failed test must not leave a transaction holding the table
        if writer.open:
            writer.commit()


def _take_xid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text")
        return int(cursor.fetchone()[0])


def test_events_are_read_after_a_mark_in_order_and_filtered_by_source():
    first, second = sale_event(1), sale_event(2)
    other = sale_event(3, type="STOCK")
    Event.objects.filter(position=other.position).update(source="legacy.stock")
    settled()
    assert [e.position for e in events_committed()] == [first.position, second.position, other.position]
    assert [e.position for e in events_committed(after=mark_of(first))] == [second.position, other.position]
    assert [e.position for e in events_committed(source="legacy.stock")] == [other.position]
    assert [e.position for e in events_committed(limit=1)] == [first.position]
    assert mark_at(position=0) == START
    assert [e.position for e in events_committed(after=mark_before(position=second.position))] == [
        second.position,
        other.position,
    ]


@pytest.mark.postgres
def test_a_reader_between_two_commits_skips_neither_event_and_sees_them_in_commit_order(settings, writers):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    early, late = writers(), writers()
    early_xid = early.do(_take_xid)  # the early transaction started writing first
    late_position = late.do(lambda: sale_event(1).position)
    early_position = early.do(lambda: sale_event(2).position)
    late_xid = late.do(_take_xid)
    assert late_position < early_position and early_xid < late_xid

    early.commit()
    # Between the commits: the event committed first is read, the other is not yet visible.
    eventually(
        lambda: consumer_run(consumer="collect").processed > 0,
        timeout=60,
        message="the committed event was never read (an older transaction stayed in flight)",
    )
    assert handlers.seen == [early_position]
    # A reader keeping "position > last" would now have nothing left to read: the trap.
    assert not Event.objects.filter(position__gt=early_position).exists()

    late.commit()
    eventually(lambda: consumer_run_all(consumer="collect").processed > 0 or len(handlers.seen) > 1, timeout=60)
    assert handlers.seen == [early_position, late_position]
    checkpoint = Checkpoint.objects.get(consumer="collect")
    assert (checkpoint.last_xid, checkpoint.last_position) == (late_xid, late_position)
    assert consumer_run_all(consumer="collect").processed == 0


@pytest.mark.postgres
def test_a_reader_waits_for_an_older_transaction_still_in_flight(settings, writers):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    older, newer = writers(), writers()
    older_position = older.do(lambda: sale_event(1).position)
    newer_position = newer.do(lambda: sale_event(2).position)
    newer.commit()

    # The newer event is committed, but the older transaction may still commit before it in
    # the log's order: nothing is read past it yet.
    assert Event.objects.filter(position=newer_position).exists()
    assert consumer_run(consumer="collect").processed == 0
    assert handlers.seen == []

    older.commit()
    eventually(lambda: consumer_run_all(consumer="collect").processed > 0 or handlers.seen, timeout=60)
    consumer_run_all(consumer="collect")
    assert handlers.seen == [older_position, newer_position]


@pytest.mark.postgres
def test_a_run_skips_a_consumer_another_run_holds(settings, writers):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    sale_event(1)
    settled()
    Checkpoint.objects.create(consumer="collect")
    holder = writers()
    holder.do(lambda: Checkpoint.objects.select_for_update().get(consumer="collect").pk)

    result = consumer_run(consumer="collect")
    assert not result.claimed and result.processed == 0
    assert handlers.seen == []

    holder.commit()
    eventually(lambda: consumer_run(consumer="collect").processed == 1 or handlers.seen, timeout=60)
    assert len(handlers.seen) == 1


def test_every_consumers_state_in_a_few_queries_whatever_their_number(django_assert_max_num_queries):
    events = [sale_event(n) for n in range(1, 6)]
    Event.objects.filter(pk=events[2].pk).update(time=timezone.now() - timedelta(seconds=90))
    # Two consumers caught up, one two events behind, one that never ran.
    for name in ("inventory", "tallies"):
        Checkpoint.objects.create(consumer=name, last_xid=mark_of(events[-1])[0], last_position=events[-1].position)
    Checkpoint.objects.create(
        consumer="reorders", last_xid=mark_of(events[2])[0], last_position=events[2].position, failures=2
    )
    DeadLetter.objects.create(consumer="reorders", event=events[1], error="boom", attempts=5)
    DeadLetter.objects.create(consumer="tallies", event=events[0], error="gone", attempts=5)
    DeadLetter.objects.filter(consumer="tallies").update(redriven_at=timezone.now())

    names = ["inventory", "reorders", "tallies", "sales_per_minute"]
    # The checkpoints, the dead letters, and one count for each of the three marks.
    with django_assert_max_num_queries(5):
        states = {s.consumer: s for s in consumers_state(consumers=names)}
    assert [s for s in states] == names
    assert (states["inventory"].behind, states["inventory"].lag_seconds, states["inventory"].dead_letters) == (0, 0, 0)
    assert states["tallies"].dead_letters == 0  # redriven
    assert (states["reorders"].behind, states["reorders"].dead_letters, states["reorders"].failures) == (2, 1, 2)
    assert states["reorders"].position == events[2].position
    assert (states["sales_per_minute"].behind, states["sales_per_minute"].position) == (5, 0)
    # The oldest event still ahead of it is 90 seconds old.
    assert states["sales_per_minute"].lag_seconds >= 89
    assert states["reorders"].lag_seconds < 60
