"""Named consumers: each keeps its own place, processes at least once and counts nothing
twice, resumes after dying mid-batch, retries a failure, then dead-letters it and moves on;
a replay only moves one back."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.consumers import UnknownConsumer, consumer_run, consumer_run_all
from events.dead_letters import dead_letter_redrive
from events.models import Checkpoint, DeadLetter, Event
from events.replays import ReplayAhead, consumer_replay
from tests.conftest import PYTHON, ROOT
from tests.events import handlers
from tests.events.conftest import sale_event, settled, small_sale

pytestmark = pytest.mark.django_db(transaction=True)

TALLY = {"tally": "tests.events.handlers.tally"}


def tallies() -> Counter:
    return Counter(Event.objects.filter(source="tally").values_list("data__counted", flat=True))


def sale_positions() -> list[int]:
    return list(Event.objects.exclude(source="tally").order_by("position").values_list("position", flat=True))


def test_each_consumer_keeps_its_own_place(settings):
    settings.EVENT_CONSUMERS = {"a": "tests.events.handlers.collect", "b": "tests.events.handlers.collect"}
    settings.EVENT_CONSUMER_BATCH = 3
    events = small_sale(4)
    settled()
    assert consumer_run(consumer="a").processed == 3
    assert consumer_run_all(consumer="b").processed == 8
    assert consumer_run_all(consumer="a").processed == 5
    assert consumer_run_all(consumer="a").processed == 0
    positions = [e.position for e in events]
    assert handlers.seen == positions[:3] + positions + positions[3:]
    assert Checkpoint.objects.get(consumer="a").last_position == positions[-1]


def test_a_consumer_with_nothing_new_takes_no_lock_and_writes_nothing(settings):
    # The workers pass over every consumer five times a second: an idle pass must not cost a
    # commit (a row lock is a write, flushed at commit like any other).
    settings.EVENT_CONSUMERS = {"a": "tests.events.handlers.collect"}
    events = small_sale(2)
    settled()
    assert consumer_run(consumer="a").processed == 4
    before = Checkpoint.objects.get(consumer="a")
    with CaptureQueriesContext(connection) as idle:
        result = consumer_run(consumer="a")
    assert (result.claimed, result.processed, result.failed) == (True, 0, False)
    sql = " ".join(query["sql"] for query in idle.captured_queries).upper()
    assert "FOR UPDATE" not in sql and "UPDATE " not in sql and "INSERT " not in sql
    assert Checkpoint.objects.get(consumer="a").updated_at == before.updated_at
    # What comes next is still taken, from where it stopped.
    more = small_sale(1)
    settled()
    assert consumer_run(consumer="a").processed == 2
    assert handlers.seen == [e.position for e in [*events, *more]]


def test_a_consumer_killed_mid_batch_resumes_from_its_checkpoint_and_counts_nothing_twice(settings):
    settings.EVENT_CONSUMERS = TALLY
    small_sale(4)
    settled()
    handlers.crash_at["n"] = 5
    with pytest.raises(handlers.Crash):
        consumer_run(consumer="tally")
    # Four events were counted before it died; their counts died with the batch.
    assert tallies() == Counter()
    assert Checkpoint.objects.get(consumer="tally").last_position == 0

    handlers.crash_at["n"] = 0
    assert consumer_run(consumer="tally").processed == 8
    assert tallies() == Counter(sale_positions())
    assert set(tallies().values()) == {1}


@pytest.mark.slow
def test_a_consumer_process_killed_mid_batch_loses_nothing_and_counts_nothing_twice(settings, process_env):
    settings.EVENT_CONSUMERS = TALLY
    small_sale(4)
    settled()
    env = {**process_env, "EVENT_CONSUMERS": "tally=tests.events.handlers.tally", "TALLY_KILL_AT": "6"}
    script = "import django; django.setup(); from events.consumers import consumer_run; consumer_run(consumer='tally')"
    run = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    assert tallies() == Counter()
    assert Checkpoint.objects.get(consumer="tally").last_position == 0

    assert consumer_run(consumer="tally").processed == 8
    assert tallies() == Counter(sale_positions())
    assert set(tallies().values()) == {1}


def test_a_failure_keeps_the_place_and_is_retried(settings):
    settings.EVENT_CONSUMERS = {"flaky": "tests.events.handlers.flaky"}
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 5
    first, second, third = sale_event(1), sale_event(2), sale_event(3)
    settled()
    handlers.failures[second.position] = 2

    result = consumer_run(consumer="flaky")
    assert (result.processed, result.failed) == (1, True)
    checkpoint = Checkpoint.objects.get(consumer="flaky")
    assert (checkpoint.last_position, checkpoint.failures) == (first.position, 1)
    assert "cannot take event" in checkpoint.last_error

    assert consumer_run(consumer="flaky").failed
    result = consumer_run(consumer="flaky")
    assert (result.processed, result.failed) == (2, False)
    assert handlers.seen == [first.position, second.position, third.position]
    assert Checkpoint.objects.get(consumer="flaky").failures == 0
    assert not DeadLetter.objects.exists()


def test_after_n_failures_the_event_goes_to_the_dead_letters_and_the_consumer_moves_on(settings):
    settings.EVENT_CONSUMERS = {"flaky": "tests.events.handlers.flaky"}
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 3
    first, bad, last = sale_event(1), sale_event(2), sale_event(3)
    settled()
    handlers.failures[bad.position] = 10

    for _ in range(2):
        assert consumer_run(consumer="flaky").failed
    result = consumer_run(consumer="flaky")
    assert (result.processed, result.dead_lettered, result.failed) == (1, 1, False)
    assert handlers.seen == [first.position, last.position]
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.event_id, letter.attempts) == ("flaky", bad.position, 3)

    # Redriven while it still fails: kept, with the new error; once it works: done, once.
    assert dead_letter_redrive(dead_letter_id=letter.pk) is False
    letter.refresh_from_db()
    assert (letter.attempts, letter.redriven_at) == (4, None)
    handlers.failures[bad.position] = 0
    assert dead_letter_redrive(dead_letter_id=letter.pk) is True
    assert dead_letter_redrive(dead_letter_id=letter.pk) is False
    assert handlers.seen == [first.position, last.position, bad.position]


def test_an_event_the_consumers_filter_fails_on_is_retried_then_dead_lettered(settings):
    """A `wants` that raises (an event missing a field it reads) was raised out of the run: the
    consumer stayed at that event for ever, retrying it several times a second, with no failure
    counted and no dead letter, so `events consumers` showed it merely behind."""
    settings.EVENT_CONSUMERS = {"picky": "tests.events.handlers.picky"}
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 3
    first, bad, last = sale_event(1), sale_event(2), sale_event(3)
    settled()
    handlers.failures[bad.position] = 10

    for attempt in (1, 2):
        assert consumer_run(consumer="picky").failed
        checkpoint = Checkpoint.objects.get(consumer="picky")
        assert (checkpoint.failures, checkpoint.last_error) == (attempt, "KeyError: 'on_hand'")
    result = consumer_run(consumer="picky")

    assert (result.processed, result.dead_lettered, result.failed) == (1, 1, False)
    assert handlers.seen == [first.position, last.position]
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.event_id, letter.attempts) == ("picky", bad.position, 3)
    assert Checkpoint.objects.get(consumer="picky").last_position == last.position


def test_a_replay_over_an_open_dead_letter_keeps_one_letter_or_settles_it(settings):
    """A replay gave the consumer an event that was already its open dead letter: failing again,
    it became a second letter for the one event (shown twice, and given twice by redriving
    both). It keeps its one letter now; and once the cause is fixed, the replay that gets
    through it settles the letter, which a redrive would otherwise give a second time."""
    settings.EVENT_CONSUMERS = {"flaky": "tests.events.handlers.flaky"}
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 2
    first, bad, last = sale_event(1), sale_event(2), sale_event(3)
    settled()
    handlers.failures[bad.position] = 10
    consumer_run_all(consumer="flaky")
    assert consumer_run_all(consumer="flaky").dead_lettered == 1

    assert consumer_replay(consumer="flaky", from_position=first.position).failed
    assert consumer_run_all(consumer="flaky").dead_lettered == 1  # failed its attempts again
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.attempts, letter.redriven_at) == (bad.position, 4, None)

    handlers.failures[bad.position] = 0  # the cause fixed
    handlers.seen.clear()
    result = consumer_replay(consumer="flaky", from_position=first.position)
    assert (result.processed, result.failed) == (3, False)
    assert handlers.seen == [first.position, bad.position, last.position]
    letter = DeadLetter.objects.get()
    assert (
        letter.redriven_at is not None
        and letter.resolution == f"given again by a replay from position {first.position}"
    )
    assert dead_letter_redrive(dead_letter_id=letter.pk) is False
    assert handlers.seen.count(bad.position) == 1


def test_replay_gives_a_consumer_the_events_from_a_position_on_again(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    events = small_sale(3)
    settled()
    consumer_run_all(consumer="collect")
    handlers.seen.clear()

    result = consumer_replay(consumer="collect", from_position=events[2].position)
    assert result.processed == 4
    assert handlers.seen == [e.position for e in events[2:]]


def test_a_replay_from_a_position_the_consumer_has_not_reached_is_refused_and_skips_nothing(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    events = small_sale(4)
    settled()
    assert consumer_run(consumer="collect", batch_size=2).processed == 2

    with pytest.raises(ReplayAhead, match=f"collect has not reached position {events[6].position}"):
        consumer_replay(consumer="collect", from_position=events[6].position)
    assert Checkpoint.objects.get(consumer="collect").last_position == events[1].position
    # The events between are still the consumer's next (for the relay: still to be sent).
    assert consumer_run_all(consumer="collect").processed == 6
    assert handlers.seen == [e.position for e in events]


def test_a_replay_from_the_consumers_next_event_skips_nothing(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    events = small_sale(2)  # each event in a transaction of its own: the next one's xid is later
    settled()
    assert consumer_run(consumer="collect", batch_size=2).processed == 2

    assert consumer_replay(consumer="collect", from_position=events[2].position).processed == 2
    assert handlers.seen == [e.position for e in events]


def test_an_unknown_consumer_is_refused(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    with pytest.raises(UnknownConsumer, match="'nope'.*registered: collect"):
        consumer_run(consumer="nope")
    assert not Checkpoint.objects.exists()


def test_events_a_consumer_does_not_want_are_passed_without_a_call(settings):
    settings.EVENT_CONSUMERS = {"even": "tests.events.handlers.even_only"}
    events = small_sale(5)
    settled()
    handlers.seen.clear()
    result = consumer_run_all(consumer="even")
    positions = [event.position for event in events]
    assert handlers.seen == [p for p in positions if p % 2 == 0]
    assert result.processed == len(events)  # the checkpoint passed them all
    assert Checkpoint.objects.get(consumer="even").last_position == max(positions)


def _log_reads(queries) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].startswith("SELECT") and '"events_event"' in q["sql"])


def test_a_pass_reads_the_log_once_for_all_the_consumers_and_an_idle_pass_costs_two_queries(settings):
    from events.runner import consumers_pass

    settings.EVENT_CONSUMERS = {name: "tests.events.handlers.collect" for name in ("a", "b", "c")}
    small_sale(1)
    settled()
    consumers_pass()  # each consumer's first run makes its checkpoint
    handlers.seen.clear()
    more = small_sale(2)
    settled()
    with CaptureQueriesContext(connection) as busy:
        consumers_pass()
    assert handlers.seen == [e.position for e in more] * 3  # every consumer, each event once
    assert _log_reads(busy) == 1
    with CaptureQueriesContext(connection) as idle:
        assert consumers_pass() == 0
    assert len(idle.captured_queries) == 2  # the checkpoints and the log: no claim, no commit
    assert handlers.seen == [e.position for e in more] * 3


def test_a_checkpoint_moved_since_the_shared_read_is_read_again_from_where_it_is(settings):
    from events.consumers import consumers_read

    settings.EVENT_CONSUMERS = {"a": "tests.events.handlers.collect"}
    small_sale(1)
    settled()
    consumer_run_all(consumer="a")
    more = small_sale(1)
    settled()
    read = consumers_read(["a"])["a"]
    assert [e.position for e in read[1]] == [e.position for e in more]
    handlers.seen.clear()
    assert consumer_run(consumer="a").processed == len(more)  # another run took them first
    assert consumer_run(consumer="a", read=read).processed == 0  # the stale read counts nothing twice
    assert handlers.seen == [e.position for e in more]


def test_a_backlog_of_a_batch_or_more_is_read_by_each_consumer_for_itself(settings):
    from events.consumers import consumers_read
    from events.runner import consumers_pass

    settings.EVENT_CONSUMERS = {"a": "tests.events.handlers.collect", "b": "tests.events.handlers.collect"}
    settings.EVENT_CONSUMER_BATCH = 3
    small_sale(1)
    settled()
    consumers_pass()
    events = small_sale(4)
    settled()
    assert consumers_read(["a", "b"]) is None
    handlers.seen.clear()
    assert consumers_pass() == 3  # a whole batch each: the loop goes again at once
    assert handlers.seen == [e.position for e in events][:3] * 2


@pytest.mark.postgres  # another writer while a batch's transaction is open: SQLite has one at a time
@pytest.mark.parametrize(("loop_seconds", "read_again"), [(0, True), (3600, False)])
def test_a_consumer_late_in_a_pass_longer_than_the_loops_wait_reads_what_was_committed_since(
    settings, loop_seconds, read_again
):
    from events.runner import consumers_pass

    settings.EVENT_CONSUMERS = {"a": "tests.events.handlers.append_elsewhere", "b": "tests.events.handlers.collect"}
    # Any pass lasts longer than no wait at all, and none lasts an hour.
    settings.EVENT_CONSUMERS_LOOP_SECONDS = loop_seconds
    small_sale(1)
    settled()
    consumers_pass()  # the checkpoints made
    handlers.seen.clear()
    handlers.later.clear()
    event = sale_event(9)
    settled()
    consumers_pass()
    assert len(handlers.later) == 1  # "a" saw the new event, and meanwhile one more was committed
    if read_again:  # "b" is given what was committed since the pass began
        assert handlers.seen == [event.position, handlers.later[0]]
    else:  # within the wait, the pass's one read stands: the next pass will bring it
        assert handlers.seen == [event.position]


def test_a_failing_handler_is_one_line_in_the_log_with_its_reason_and_its_traceback_only_at_debug(settings, caplog):
    settings.EVENT_CONSUMERS = {"flaky": "tests.events.handlers.flaky"}
    bad = sale_event(1)
    settled()
    handlers.failures[bad.position] = 2

    with caplog.at_level("INFO", logger="events.consumers"):
        assert consumer_run(consumer="flaky").failed
    with caplog.at_level("DEBUG", logger="events.consumers"):
        assert consumer_run(consumer="flaky").failed

    said, debugged = [r for r in caplog.records if r.name == "events.consumers" and r.levelname == "WARNING"]
    reason = f"consumer handler failed on event {bad.position}: RuntimeError: cannot take event {bad.position} yet"
    assert (said.getMessage(), bool(said.exc_info)) == (reason, False)
    assert debugged.exc_info
