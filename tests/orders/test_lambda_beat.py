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

from shop.models import ConfirmationEmail
from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INVOKE = """
import json
from config.lambda_beat import lambda_handler
print(json.dumps(lambda_handler({}, None), default=str))
"""


def test_a_cold_sweeper_runs_every_sweep_of_the_schedule(process_env):
    # A confirmation the hot path's worker could not send: the sweeper's to send.
    ConfirmationEmail.objects.create(
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
    done = subprocess.run([PYTHON, "-c", INVOKE], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout.strip().splitlines()[-1])["ran"]
    assert set(ran) == set(settings.CELERY_BEAT_SCHEDULE) - {"shop-checkouts-in-doubt"}
    failed = {name: result for name, result in ran.items() if str(result).startswith("failed")}
    assert failed == {}
    assert ran["shop-confirmations-unsent"] == {"sent": 1, "failed": 0, "deleted": 0}
    assert ConfirmationEmail.objects.get().sent_at is not None
