"""The hot path's sweeper as an AWS Lambda function (config.lambda_beat), invoked by an
EventBridge schedule every minute in place of `celery beat`: in a fresh process, as a cold
Lambda runtime starts it, it runs every sweep of the beat schedule."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from shop.models import OrderEmail
from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INVOKE = """
import json, sys
from config.lambda_beat import lambda_handler
print(json.dumps(lambda_handler(json.loads(sys.argv[1]), None), default=str))
"""


# The same, with the hourly snapshots' task failing (its database gone, say).
INVOKE_SNAPSHOTS_FAILING = """
import json, sys
import config.lambda_beat as beat
from django.conf import settings
def gone(*args, **kwargs):
    raise RuntimeError("the database went away")
beat.app.tasks[settings.CELERY_BEAT_SCHEDULE["events-snapshots"]["task"]].apply = gone
print(json.dumps(beat.lambda_handler(json.loads(sys.argv[1]), None), default=str))
"""


def invoke(env: dict, event: dict, *, code: str = INVOKE) -> dict:
    done = subprocess.run(
        [PYTHON, "-c", code, json.dumps(event)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["ran"]


# EventBridge's scheduled event, as its rate(1 minute) rule sends it.
def scheduled(at: str) -> dict:
    return {"source": "aws.events", "detail-type": "Scheduled Event", "time": at, "detail": {}}


def test_a_cold_sweeper_runs_every_sweep_of_the_schedule(process_env):
    # A confirmation the hot path's worker could not send: the sweeper's to send.
    OrderEmail.objects.create(
        number="T000001",
        name="Ada Angler",
        email="ada@example.com",
        total_cents=14999,
        lines=[["Muskie Casting Rod", 1]],
        attempts=1,
        held_until=timezone.now() - timedelta(seconds=1),
    )
    env = {
        **process_env,
        "SHOP_DEPLOYMENT": "hotpath",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    ran = invoke(env, scheduled("2026-12-06T05:00:00Z"))  # on the hour: every sweep is due
    assert set(ran) == set(settings.CELERY_BEAT_SCHEDULE) - {"shop-checkouts-in-doubt", "shop-sessions-baskets-prune"}
    failed = {name: result for name, result in ran.items() if str(result).startswith("failed")}
    assert failed == {}
    assert ran["shop-confirmations-unsent"] == {"sent": 1, "failed": 0, "deleted": 0}
    assert OrderEmail.objects.get().sent_at is not None


def test_a_sweep_scheduled_less_often_than_each_minute_runs_only_when_due(process_env):
    """The hourly snapshots and pruning, and the five-minute reconciliation, run at their own
    pace, not at every minute's invocation (a snapshot of every view each minute piled up)."""
    env = {**process_env, "SHOP_DEPLOYMENT": "hotpath"}
    assert "events-snapshots" in invoke(env, scheduled("2026-12-06T05:00:00Z"))
    each_minute = invoke(env, scheduled("2026-12-06T05:01:00Z"))
    assert "events-snapshots" not in each_minute and "events-prune" not in each_minute
    assert "orders-sale-reconcile" not in each_minute
    assert {"orders-outbox-sweep", "orders-stalled-sweep", "events-relay", "shop-confirmations-unsent"} <= set(
        each_minute
    )
    assert "orders-sale-reconcile" in invoke(env, scheduled("2026-12-06T05:05:00Z"))


@pytest.mark.redis
def test_a_missed_invocation_delays_an_hourly_sweep_by_a_minute_and_a_repeated_one_runs_nothing_twice(
    process_env,
):
    """EventBridge may never deliver one minute's invocation, and may deliver one twice: the
    hourly sweeps run once each hour all the same."""
    env = {**process_env, "SHOP_DEPLOYMENT": "hotpath"}
    assert "events-snapshots" in invoke(env, scheduled("2026-12-06T05:00:00Z"))
    # 06:00 never came.
    late = invoke(env, scheduled("2026-12-06T06:01:00Z"))
    assert {"events-snapshots", "events-prune", "orders-sale-reconcile"} <= set(late)
    again = invoke(env, scheduled("2026-12-06T06:01:00Z"))  # delivered twice
    assert {"events-snapshots", "events-prune", "orders-sale-reconcile"}.isdisjoint(again)
    assert "orders-outbox-sweep" in again, "a sweep due each minute runs at each invocation"
    assert "events-snapshots" not in invoke(env, scheduled("2026-12-06T06:02:00Z"))
    assert "events-snapshots" in invoke(env, scheduled("2026-12-06T07:00:00Z"))


@pytest.mark.redis
def test_an_hourly_sweep_that_failed_is_tried_again_at_the_next_invocation(process_env):
    env = {**process_env, "SHOP_DEPLOYMENT": "hotpath"}
    failed = invoke(env, scheduled("2026-12-06T05:00:00Z"), code=INVOKE_SNAPSHOTS_FAILING)
    assert failed["events-snapshots"].startswith("failed:") and not str(failed["events-prune"]).startswith("failed")
    retried = invoke(env, scheduled("2026-12-06T05:01:00Z"))
    assert "events-snapshots" in retried and not str(retried["events-snapshots"]).startswith("failed")
    assert "events-prune" not in retried, "a sweep that ran is not run again in its hour"


def test_without_redis_a_sweep_runs_on_its_slot_s_own_minute(process_env):
    """A cache of each Lambda instance's own cannot say what another instance ran."""
    env = {**process_env, "SHOP_DEPLOYMENT": "hotpath", "REDIS_URL": ""}
    assert "events-snapshots" not in invoke(env, scheduled("2026-12-06T05:01:00Z"))
    assert "events-snapshots" in invoke(env, scheduled("2026-12-06T05:00:00Z"))
    assert "events-snapshots" in invoke(env, scheduled("2026-12-06T05:00:00Z")), "each invocation of minute 0"
