"""A Redis broker that stops answering without closing its connections: the outbox's relay
gives up after the broker's timeout and keeps the rows it took, instead of waiting until TCP
gives up while it holds them (their orders unsent all that time)."""

from __future__ import annotations

import subprocess

import pytest

from orders.models import OutboxMessage
from tests.conftest import PYTHON, ROOT, settings_of_fresh_process
from tests.orders.conftest import order_accept_as_buyer
from tests.orders.test_redis_silent import silent_redis  # noqa: F401 - fixture

RELAY = "import django; django.setup(); from orders.outbox import outbox_relay; print('published', outbox_relay())"


def test_the_broker_waits_for_redis_as_long_as_the_setting_says():
    options = "{k: v for k, v in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items() if 'socket' in k}"
    url = "redis://127.0.0.1:6379/4"
    assert settings_of_fresh_process(options, CELERY_BROKER_URL=url) == {
        "socket_timeout": 5.0,
        "socket_connect_timeout": 5.0,
    }
    # Never below 2 s: the workers wait for messages with a blocking read of 1 s.
    assert settings_of_fresh_process(options, CELERY_BROKER_URL=url, BROKER_TIMEOUT_SECONDS="0.1") == {
        "socket_timeout": 2.0,
        "socket_connect_timeout": 2.0,
    }


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_relay_gives_up_on_a_silent_broker_and_keeps_the_order_to_send_later(
    process_env,
    allocation,
    silent_redis,  # noqa: F811 - fixture
):
    order = order_accept_as_buyer()
    assert OutboxMessage.objects.filter(order=order).exists()
    env = {**process_env, "CELERY_BROKER_URL": silent_redis.url, "BROKER_TIMEOUT_SECONDS": "2"}
    # Without a timeout the relay never returns: 90 s tells the two apart.
    done = subprocess.run([PYTHON, "-c", RELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "published 0"
    assert silent_redis.commands(), "the relay never reached the broker"
    row = OutboxMessage.objects.get(order=order)
    assert row.publish_attempts == 1 and "imeout" in row.last_error, row.last_error
