"""The queue depth the live view and the dashboard show: one question to the broker per
process every couple of seconds, however many pages reload, and one try at a broker that
does not answer, remembered for a while instead of asked again at every reload."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from orders import broker_depth
from orders.broker_depth import broker_depth_forget, broker_queue_depth


@pytest.fixture(autouse=True)
def fresh_memo() -> Iterator[None]:
    broker_depth_forget()
    yield
    broker_depth_forget()


@pytest.fixture
def closing_port() -> Iterator[dict]:
    """A port that takes each connection and closes it at once, as a broker's host whose
    broker is down behind a proxy does; `seen["connections"]` counts them."""
    server = socket.create_server(("127.0.0.1", 0))
    seen = {"connections": 0, "port": server.getsockname()[1]}

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            seen["connections"] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield seen
    # Closing alone would leave the thread blocked in accept(): shut down, it returns at once.
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_rabbitmq_that_does_not_answer_is_tried_once_and_not_again_at_the_next_reload(closing_port):
    url = f"amqp://guest:guest@127.0.0.1:{closing_port['port']}//"
    with override_settings(CELERY_BROKER_URL=url):
        assert broker_queue_depth() is None
        # kombu's own retry would have connected a second time, 2 s later.
        assert closing_port["connections"] == 1
        assert broker_queue_depth() is None
        assert closing_port["connections"] == 1


def test_a_redis_that_does_not_answer_is_not_asked_again_at_the_next_reload(closing_port):
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{closing_port['port']}/0"):
        assert broker_queue_depth() is None
        tried = closing_port["connections"]
        assert tried >= 1
        assert broker_queue_depth() is None
        assert closing_port["connections"] == tried


@pytest.mark.redis
def test_the_depth_is_read_once_for_every_page_that_reloads_meanwhile_then_again(settings, monkeypatch):
    import redis

    url = settings.REDIS_URL.rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, b"a", b"b")
    try:
        with override_settings(CELERY_BROKER_URL=url):
            assert broker_queue_depth() == 2
            client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, b"c")
            assert broker_queue_depth() == 2  # the figure of a moment ago
            monkeypatch.setattr(broker_depth, "BROKER_DEPTH_MEMO_SECONDS", 0.0)
            broker_depth_forget()
            assert broker_queue_depth() == 3
            assert broker_queue_depth() == 3
            client.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, b"d")
            assert broker_queue_depth() == 4  # nothing remembered with a memo of 0 s
    finally:
        client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
        client.close()


def test_a_broker_with_no_queue_length_to_read_says_none():
    with override_settings(CELERY_BROKER_URL="filesystem://"):
        assert broker_queue_depth() is None


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith(("redis", "filesystem")),
    reason="only Redis and the embedded broker tell which orders' messages wait",
)
def test_the_orders_waiting_are_read_page_by_page_past_other_tasks_and_a_page_s_end():
    """The stalled sweep reads which orders' messages wait, a page of the queue at a time so
    that Redis is never held up for long: every order's message on every page, none of the
    beat's own tasks, none of another task that takes arguments."""
    from celery import current_app

    from tests.orders.conftest import broker_purge

    broker_purge()
    orders = list(range(1, broker_depth.PAGE + 301))
    try:
        with current_app.producer_or_acquire() as producer:
            for order_id in orders:
                current_app.send_task(broker_depth.ORDER_TASK, args=[order_id], producer=producer)
                if order_id % 500 == 0:
                    current_app.send_task("orders.tasks.outbox_sweep", producer=producer)
            current_app.send_task("orders.tasks.sale_settle", args=[99999], producer=producer)
        assert broker_depth.orders_waiting_in_broker() == set(orders)
    finally:
        broker_purge()
