"""The outbox's relay: the request that accepts an order publishes nothing; the relay sends
each committed order's message once, shares the rows with other relays, and keeps what the
broker would not take."""

import threading

import kombu
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from orders import outbox
from orders.models import OutboxMessage
from tests.orders.conftest import broker_depth, broker_purge, broker_take_all, order_accept_as_buyer
from tracing.context import current_carrier


@pytest.fixture(autouse=True)
def empty_broker():
    broker_purge()


def test_the_request_publishes_nothing_and_the_relay_sends_each_order_once(allocation):
    orders = [order_accept_as_buyer(quantity=1) for _ in range(3)]
    assert broker_depth() == 0
    assert OutboxMessage.objects.count() == 3

    assert outbox.outbox_relay() == 3
    assert outbox.outbox_relay() == 0
    bodies = [body for _headers, body in broker_take_all()]
    assert sorted(args for args, _kwargs, _embed in bodies) == sorted([order.pk] for order in orders)
    assert not OutboxMessage.objects.exists()


def test_the_relay_takes_the_oldest_first_and_no_more_than_its_batch(allocation):
    orders = [order_accept_as_buyer(quantity=1) for _ in range(3)]
    assert outbox.outbox_relay(limit=2) == 2
    assert list(OutboxMessage.objects.values_list("order_id", flat=True)) == [orders[2].pk]


def test_a_broker_that_refuses_leaves_the_row_with_its_error(allocation, monkeypatch):
    order = order_accept_as_buyer(quantity=1)

    def refuse(*args, **kwargs):
        raise ConnectionError("broker away")

    monkeypatch.setattr(outbox.current_app, "send_task", refuse)
    assert outbox.outbox_relay() == 0
    row = OutboxMessage.objects.get(order=order)
    assert (row.publish_attempts, row.last_error) == (1, "broker away")


@pytest.mark.skipif(not settings.CELERY_BROKER_URL.startswith("redis"), reason="Redis's pipeline is what batches")
def test_a_batch_goes_to_redis_in_one_round_trip_and_a_failed_one_keeps_every_row(allocation, monkeypatch):
    orders = [order_accept_as_buyer(quantity=1) for _ in range(3)]
    executes = []
    execute = redis.client.Pipeline.execute

    def refuse(pipeline, *args, **kwargs):
        raise redis.ConnectionError("broker away")

    with monkeypatch.context() as patched:
        patched.setattr(redis.client.Pipeline, "execute", refuse)
        assert outbox.outbox_relay() == 0
    assert broker_depth() == 0
    rows = OutboxMessage.objects.order_by("order_id")
    assert [row.order_id for row in rows] == [order.pk for order in orders]
    assert rows[0].publish_attempts == 1 and "broker" in rows[0].last_error

    def counted(pipeline, *args, **kwargs):
        executes.append(sum(args[0] == "LPUSH" for args, _options in pipeline.command_stack))
        return execute(pipeline, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(redis.client.Pipeline, "execute", counted)
        assert outbox.outbox_relay() == 3
    assert [pushes for pushes in executes if pushes] == [3]  # the three messages, in one pipeline
    assert broker_depth() == 3 and not OutboxMessage.objects.exists()


def test_a_publish_that_fails_leaves_no_span_current(allocation, monkeypatch):
    # Celery's instrumentation makes a span current before each publish and ends it after: a
    # publish that raises must not leave it current in the relay's (or the sweeper's) thread.
    import orders.tasks  # noqa: F401 - the task registered, as in a worker: its publishes are traced

    order = order_accept_as_buyer(quantity=1)
    celery_tracing = CeleryInstrumentor()
    ours = not celery_tracing.is_instrumented_by_opentelemetry
    if ours:
        celery_tracing.instrument(tracer_provider=TracerProvider())

    def refuse(*args, **kwargs):
        raise ConnectionError("broker away")

    try:
        with monkeypatch.context() as patched:
            patched.setattr(kombu.Producer, "publish", refuse)
            assert outbox.outbox_relay() == 0
            assert current_carrier() == {}
            assert outbox.outbox_publish(order_id=order.pk) is False
            assert current_carrier() == {}
    finally:
        if ours:
            celery_tracing.uninstrument()
    assert OutboxMessage.objects.get(order=order).publish_attempts == 2


@pytest.mark.django_db(transaction=True)
def test_two_relays_never_send_the_same_row(allocation):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL: set DATABASE_URL=postgres://...")
    broker_purge()
    first, second = (order_accept_as_buyer(quantity=1) for _ in range(2))
    holding, release, other = threading.Event(), threading.Event(), {}

    def relay_holding_the_first_row():
        with transaction.atomic():
            list(OutboxMessage.objects.select_for_update().filter(order=first))
            holding.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=relay_holding_the_first_row)
    holder.start()
    assert holding.wait(10)
    try:
        other["sent"] = outbox.outbox_relay()  # skips the locked row instead of waiting for it
    finally:
        release.set()
        holder.join()
    assert other["sent"] == 1
    assert list(OutboxMessage.objects.values_list("order_id", flat=True)) == [first.pk]
    assert [body[0] for _headers, body in broker_take_all()] == [[second.pk]]
