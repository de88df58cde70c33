"""pruning reads where the consumers stand, then deletes, with nothing between the two
holding a consumer where it was: a replay (or reset) that moves a consumer back meanwhile has
the events it was moved back to deleted under it. The consumer then resumes past them: they
are never given to it again, and nothing says so ("a stalled consumer keeps everything from
its checkpoint on, so it can always resume" does not hold).

Real PostgreSQL, pruning in its own thread; the pause in it (after it read the checkpoints,
before it deletes) is the one point a slow DELETE or a busy database widens in production."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import events.services as services
from events.consumers import consumer_run_all
from events.models import Checkpoint, Event
from events.replays import consumer_replay
from events.selectors import pruned_mark
from tests.conftest import eventually
from tests.events import handlers
from tests.events.conftest import sale_event, settled


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_replay_while_pruning_runs_keeps_the_events_it_went_back_for(settings, monkeypatch):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.flaky"}
    settings.EVENT_VIEWS = {}
    settings.EVENT_RETENTION_DAYS = 1
    events = [sale_event(n) for n in range(1, 7)]
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    settled()
    assert consumer_run_all(consumer="collect").processed == 6
    handlers.seen.clear()

    read_checkpoints, go_on = threading.Event(), threading.Event()
    real = services.snapshots_mark

    def paused(views):
        read_checkpoints.set()  # `passed` is computed: every consumer at the end of the log
        assert go_on.wait(30)
        return real(views)

    monkeypatch.setattr(services, "snapshots_mark", paused)
    pruned = []

    def prune():
        try:
            pruned.append(services.events_prune())
        finally:
            connection.close()

    pruner = threading.Thread(target=prune)
    pruner.start()
    assert read_checkpoints.wait(30)

    # The operator replays from the third event; the target is briefly unable to take it.
    replay_from = events[2].position
    handlers.failures[replay_from] = 1
    replayed = []

    def replay():
        try:
            replayed.append(consumer_replay(consumer="collect", from_position=replay_from))
        except Exception as exc:  # a refusal is an answer too
            replayed.append(exc)
        finally:
            connection.close()

    operator = threading.Thread(target=replay)
    operator.start()
    # Pruning goes on once the replay is done, or waits for pruning (a fix serialising the two).
    eventually(lambda: not operator.is_alive() or _waiting_on_a_lock(), timeout=30)
    go_on.set()
    pruner.join(30)
    operator.join(30)
    (outcome,) = replayed
    if isinstance(outcome, Exception):
        # Told that the events are gone: no silent loss.
        assert type(outcome).__name__ == "ReplayPruned", outcome
        return
    assert outcome.failed  # kept its place just before the third event, to try again

    consumer_run_all(consumer="collect")  # the next pass
    wanted = [e.position for e in events[2:]]
    checkpoint = Checkpoint.objects.get(consumer="collect")
    assert handlers.seen == wanted, (
        f"replayed {handlers.seen}, wanted {wanted}; pruning deleted {pruned} events up to "
        f"{pruned_mark()[1]} while the consumer stood at {checkpoint.last_position}"
    )


def test_a_replay_from_a_dead_lettered_event_kept_past_pruning_is_refused_not_silently_short(settings):
    """No race needed: pruning keeps a dead-lettered event and deletes its neighbours; a replay
    from it (mark_at finds it) gives it alone and says nothing of the others. A rebuild in the
    same place is refused (LogPruned); a replay should be too."""
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.flaky"}
    settings.EVENT_VIEWS = {}
    settings.EVENT_RETENTION_DAYS = 1
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    events = [sale_event(n) for n in range(1, 7)]
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    settled()
    handlers.failures[events[2].position] = 1
    assert consumer_run_all(consumer="collect").dead_lettered == 1
    assert services.events_prune() == 5  # all but the dead-lettered one
    handlers.seen.clear()

    try:
        consumer_replay(consumer="collect", from_position=events[2].position)
    except Exception as exc:
        assert type(exc).__name__ == "ReplayPruned", exc
        return
    wanted = [e.position for e in events[2:]]
    assert handlers.seen == wanted, f"replayed {handlers.seen} and said nothing; the events from it on were {wanted}"
