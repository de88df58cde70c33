"""`manage.py events`: tail in commit order (text and one envelope per line), consumers with
their lag, replay, relay, prune and retire; bad input exits non-zero with a one-line reason."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from events.consumers import consumer_run, consumer_run_all
from events.models import Checkpoint, Event
from events.selectors import events_committed, mark_end
from events.services import events_prune
from tests.conftest import PYTHON, ROOT, eventually
from tests.events import handlers
from tests.events.conftest import assert_envelope_valid, sale_event, settled, small_sale

pytestmark = pytest.mark.django_db(transaction=True)


def events(*args: str) -> str:
    out = StringIO()
    call_command("events", *args, stdout=out)
    return out.getvalue()


def test_tail_prints_the_log_in_order():
    sale = small_sale(2)
    settled()
    lines = events("tail").splitlines()
    assert len(lines) == 4
    assert lines[0].split()[0] == str(sale[0].position)
    assert "shop.hotpath" in lines[0] and "CHECKOUT/ORDER/ACCEPTED" in lines[0] and "H000001" in lines[0]


def test_tail_prints_the_whole_log_however_long(monkeypatch):
    from events.management.commands import events as command

    monkeypatch.setattr(command, "TAIL_BATCH", 2)
    sale = small_sale(3)
    settled()
    assert [int(line.split()[0]) for line in events("tail").splitlines()] == [e.position for e in sale]


def test_tail_json_is_one_envelope_per_line_after_a_position_and_of_one_source():
    sale = small_sale(2)
    Event.objects.filter(position=sale[3].position).update(source="legacy.orders")
    settled()
    envelopes = [json.loads(line) for line in events("tail", "--json", "--after", str(sale[0].position)).splitlines()]
    assert [e["detail"]["event"]["meta_data"]["position"] for e in envelopes] == [e.position for e in sale[1:]]
    for envelope in envelopes:
        assert_envelope_valid(envelope)
    only = events("tail", "--json", "--source", "legacy.orders").splitlines()
    assert [json.loads(line)["source"] for line in only] == ["legacy.orders"]


@pytest.mark.slow
def test_tail_follow_prints_events_as_they_commit(processes, process_env):
    first = sale_event(1)
    settled()
    tail = processes.start(
        [PYTHON, "manage.py", "events", "tail", "--follow", "--json", "--after", str(first.position)],
        process_env,
        name="tail",
    )
    later = [sale_event(2), sale_event(3, status="COMPLETE")]

    def printed() -> list[int]:
        lines = [line for line in processes.log(tail).splitlines() if line.startswith("{")]
        return [json.loads(line)["detail"]["event"]["meta_data"]["position"] for line in lines]

    eventually(lambda: len(printed()) >= 2, timeout=60, message="tail --follow printed nothing new")
    assert printed() == [e.position for e in later]
    assert tail.poll() is None  # still following


def test_consumers_lists_position_lag_and_dead_letters(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect", "flaky": "tests.events.handlers.flaky"}
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    first, second = sale_event(1), sale_event(2)
    Event.objects.filter(position=first.position).update(time=timezone.now() - timedelta(minutes=5))
    settled()
    handlers.failures[first.position] = 1
    consumer_run_all(consumer="flaky")

    states = {s["consumer"]: s for s in json.loads(events("consumers", "--json"))}
    assert states["collect"]["position"] == 0
    assert states["collect"]["behind"] == 2
    assert states["collect"]["lag_seconds"] >= 300
    assert (states["flaky"]["position"], states["flaky"]["behind"], states["flaky"]["dead_letters"]) == (
        second.position,
        0,
        1,
    )
    text = events("consumers")
    assert "collect: position 0, 2 behind" in text and "flaky: position" in text and "1 dead letter\n" in text


def test_replay_runs_one_consumer_from_a_position(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    sale = small_sale(2)
    settled()
    assert "4 processed" in events("replay", "collect", "--from", "0")
    assert "2 processed" in events("replay", "collect", "--from", str(sale[2].position))
    assert handlers.seen == [e.position for e in sale] + [e.position for e in sale[2:]]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["replay", "nope", "--from", "0"], "unknown consumer 'nope'"),
        (["replay", "collect", "--from", "x"], "--from: 'x' is not a position"),
        (["replay", "collect", "--from", "-3"], "--from: -3 is not a position"),
        (["replay", "collect", "--from", "999999"], "no event at position 999999"),
        (["tail", "--after", "soon"], "--after: 'soon' is not a position"),
        (["relay", "--once"], "needs EVENTBRIDGE_BUS_NAME"),
    ],
)
def test_bad_input_is_refused_with_a_reason(settings, args, reason):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    settings.EVENTBRIDGE_BUS_NAME = ""
    with pytest.raises(CommandError, match=reason):
        events(*args)
    assert not handlers.seen


def test_replay_from_a_position_the_consumer_has_not_reached_is_refused_with_a_reason(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    sale = small_sale(2)
    settled()
    assert consumer_run(consumer="collect", batch_size=1).processed == 1
    with pytest.raises(CommandError) as refused:
        events("replay", "collect", "--from", str(sale[3].position))
    assert str(refused.value) == (
        f"collect has not reached position {sale[3].position} (it is at {sale[0].position}): replaying from "
        "there would skip the events between. A replay only moves a consumer back."
    )
    assert Checkpoint.objects.get(consumer="collect").last_position == sale[0].position
    assert handlers.seen == [sale[0].position]


def test_a_refusal_exits_non_zero_with_one_line(process_env):
    run = subprocess.run(
        [PYTHON, "manage.py", "events", "replay", "nope", "--from", "1"],
        cwd=ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    reason = [line for line in run.stderr.splitlines() if line.startswith("CommandError")]
    assert reason == [
        "CommandError: unknown consumer 'nope' (registered: inventory, reorders, sales_per_minute, tallies)"
    ]


def test_prune_reports_what_it_deleted(settings):
    settings.EVENT_CONSUMERS = {}
    settings.EVENT_RETENTION_DAYS = 7
    sale_event(1)
    Event.objects.update(time=timezone.now() - timedelta(days=8))
    sale_event(2)
    assert events("prune").strip() == "1 events pruned."
    assert Event.objects.count() == 1


def test_retire_forgets_a_consumer_no_process_runs_any_more_and_refuses_one_registered_here(settings):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    Checkpoint.objects.create(consumer="old-relay", last_position=7)
    Checkpoint.objects.create(consumer="collect")

    assert events("retire", "old-relay").strip() == (
        "old-relay retired (it was at position 7): pruning no longer waits for it."
    )
    with pytest.raises(CommandError, match="collect is registered in EVENT_CONSUMERS here"):
        events("retire", "collect")
    assert list(Checkpoint.objects.values_list("consumer", flat=True)) == ["collect"]


def test_consumers_does_not_suggest_retiring_a_read_model_another_process_runs(settings):
    """`events retire` refuses a read model (run again, it would count events twice), yet the
    list told the merchant to retire one this process does not run."""
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    Checkpoint.objects.create(consumer="inventory")
    Checkpoint.objects.create(consumer="old-relay")

    lines = {line.split(":")[0]: line for line in events("consumers").splitlines()}

    assert "(not run here: a read model" in lines["inventory"] and "retire" not in lines["inventory"]
    assert "`events retire` it if no process runs it" in lines["old-relay"]
    assert "not run here" not in lines["collect"]


def _tail(*args: str) -> tuple[list[int], str]:
    out, err = StringIO(), StringIO()
    call_command("events", "tail", "--json", *args, stdout=out, stderr=err)
    positions = [json.loads(line)["detail"]["event"]["meta_data"]["position"] for line in out.getvalue().splitlines()]
    return positions, err.getvalue()


def test_tail_after_a_pruned_position_starts_after_what_was_pruned_and_says_so(settings):
    settings.EVENT_RETENTION_DAYS = 1
    settings.EVENT_CONSUMERS = {}
    old = small_sale(2)
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    fresh = sale_event(9)
    settled()
    assert events_prune() == len(old)

    positions, said = _tail("--after", str(old[1].position))

    assert positions == [fresh.position]
    assert said == f"position {old[1].position} was pruned: from the next event, after position {old[-1].position}.\n"


@pytest.mark.postgres  # SQLite gives a rolled-back insert's number to the next one: no gap there
def test_tail_after_a_position_no_event_took_starts_at_the_next_event(settings):
    first = sale_event(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        gap = sale_event(2)
        raise RuntimeError("rolled back: its position is never used")
    last = sale_event(3)
    settled()

    assert _tail("--after", str(gap.position)) == ([last.position], "")
    assert _tail("--after", str(first.position)) == ([last.position], "")
    with pytest.raises(CommandError, match=f"no event at position {last.position + 100}"):
        _tail("--after", str(last.position + 100))


def test_tail_after_end_prints_only_what_commits_from_then_on():
    small_sale(1)
    settled()
    end = mark_end()

    assert _tail("--after", "end") == ([], "")
    later = sale_event(5)
    settled()
    assert [e.position for e in events_committed(after=end)] == [later.position]


@pytest.mark.postgres  # transaction ids and the log's horizon are the server's
def test_consumers_name_the_transaction_in_another_database_that_every_consumer_waits_on(settings, monkeypatch):
    """A transaction left open in another database of the same server holds every reader of
    the log back: the consumers fall behind with no failure of their own, and the operator is
    told which transaction to look at."""
    import re

    import psycopg
    from django.db import connection

    from events import selectors

    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    monkeypatch.setattr(selectors, "HELD_BACK_AFTER_SECONDS", 0.0)
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as other:
        other.execute("SELECT txid_current()")  # it has written: it holds a transaction id
        sale_event(1)
        assert consumer_run_all(consumer="collect").processed == 0

        text = events("consumers")
        (state,) = json.loads(events("consumers", "--json"))
        assert "collect: position 0, 1 behind" in text
        assert re.search(r"Every consumer has waited \d+s on a transaction \(pid \d+, database \S+, ", text)
        waited_on = state["waiting_on_transaction"]
        # This one, unless another writer of the server, older still, is the one named.
        if waited_on["pid"] == other.info.backend_pid:
            assert (waited_on["database"], waited_on["state"]) == ("postgres", "idle in transaction")
    settled()
    assert consumer_run_all(consumer="collect").processed == 1
    assert "waited" not in events("consumers")  # nothing waits
    assert json.loads(events("consumers", "--json"))[0]["waiting_on_transaction"] is None
