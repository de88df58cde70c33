"""The beat task that runs every registered consumer once, and the prune task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Checkpoint, Event
from events.tasks import consumers_run, events_prune
from tests.events import handlers
from tests.events.conftest import settled, small_sale

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_run_gives_every_consumer_a_batch_and_a_broken_one_holds_nobody_up(settings):
    settings.EVENT_CONSUMERS = {
        "a-broken": "tests.events.handlers.no_such_handler",
        "collect": "tests.events.handlers.collect",
    }
    sale = small_sale(2)
    settled()
    consumers_run()
    assert handlers.seen == [e.position for e in sale]
    assert Checkpoint.objects.get(consumer="collect").last_position == sale[-1].position
    consumers_run()
    assert handlers.seen == [e.position for e in sale]


def test_the_prune_task_applies_the_retention_rule(settings):
    settings.EVENT_CONSUMERS = {}
    settings.EVENT_RETENTION_DAYS = 2
    small_sale(1)
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    events_prune()
    assert not Event.objects.exists()


def test_the_relay_is_a_registered_consumer_only_when_a_bus_is_named(process_env):
    import json
    import subprocess

    from tests.conftest import PYTHON, ROOT

    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.EVENT_CONSUMERS))"
    )

    def consumers(**env) -> dict:
        run = subprocess.run(
            [PYTHON, "-c", script],
            cwd=ROOT,
            env={**process_env, "EVENT_CONSUMERS": "", "EVENTBRIDGE_BUS_NAME": "", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout.strip().splitlines()[-1])

    assert consumers() == {}
    assert consumers(EVENTBRIDGE_BUS_NAME="checkout-bus") == {"eventbridge": "events.relay.relay_events"}
    assert consumers(EVENT_CONSUMERS="stock=shop.consumers.stock, tally=x.y") == {
        "stock": "shop.consumers.stock",
        "tally": "x.y",
    }


@pytest.mark.slow
def test_a_real_worker_with_beat_runs_the_consumers(processes, process_env, tmp_path):
    from collections import Counter

    from tests.conftest import BIN, eventually

    sale = small_sale(3)
    # The worker's own loop off: beat's pass alone, sent every second (a new schedule's first
    # comes one interval after beat starts).
    env = {
        **process_env,
        "EVENT_CONSUMERS": "tally=tests.events.handlers.tally",
        "EVENT_CONSUMERS_LOOP_SECONDS": "0",
        "EVENT_CONSUMERS_SECONDS": "1",
    }
    processes.start(
        [
            str(BIN / "celery"),
            *("-A", "config", "worker", "--beat", "--concurrency", "1", "--loglevel", "INFO"),
            *("--without-gossip", "--without-mingle", "--schedule", str(tmp_path / "beat-schedule")),
        ],
        env,
        name="worker",
    )

    def tallies() -> Counter:
        return Counter(Event.objects.filter(source="tally").values_list("data__counted", flat=True))

    eventually(lambda: len(tallies()) == len(sale), timeout=90, message="beat never ran the tally consumer")
    assert tallies() == Counter({event.position: 1 for event in sale})


def test_a_worker_without_beat_runs_the_consumers_in_its_own_loop(processes, process_env):
    """Beat's pass is a task in the orders' queue; the worker's loop does not wait behind it."""
    from collections import Counter

    from tests.conftest import eventually

    sale = small_sale(3)
    processes.celery_worker({**process_env, "EVENT_CONSUMERS": "tally=tests.events.handlers.tally"}, concurrency=1)

    def tallies() -> Counter:
        return Counter(Event.objects.filter(source="tally").values_list("data__counted", flat=True))

    eventually(lambda: len(tallies()) == len(sale), timeout=90, message="the worker's loop never ran the consumer")
    assert tallies() == Counter({event.position: 1 for event in sale})
