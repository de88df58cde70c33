"""The hot path's sweepers on the database: the outbox, orders whose message was lost, and
reservations nobody confirmed in time; the last two do not act while the workers make progress
through a deep queue, but for an order a killed worker left claimed. And their beat schedule."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from orders import placement, sweeps
from orders.models import HotOrder, OutboxMessage
from tests.orders.conftest import broker_depth, broker_purge, broker_take_all, order_accept_as_buyer


def accept(allocation, **body):
    return order_accept_as_buyer(**body)


def test_unconfirmed_reservations_expire_and_return_to_the_allocation(allocation):
    stale = accept(allocation, quantity=2)
    fresh = accept(allocation, quantity=1)
    parked = accept(allocation, quantity=1)
    placement.order_dead_letter(order_id=parked.pk, error="legacy API down")
    HotOrder.objects.filter(pk__in=[stale.pk, parked.pk]).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert sweeps.reservations_expire() == 1
    stale.refresh_from_db()
    allocation.refresh_from_db()
    assert (stale.status, stale.stage) == ("failed", "expired")
    assert allocation.reserved == 2  # the fresh order and the dead letter keep theirs
    assert HotOrder.objects.get(pk=fresh.pk).status == "processing"


def test_an_order_already_sent_to_the_legacy_api_never_expires(allocation, settings):
    """The legacy API may have placed it: releasing its units could sell them twice."""
    sent = accept(allocation, quantity=2)
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=sent.pk).update(
        attempts=1, reserved_until=timezone.now() - timedelta(seconds=1), updated_at=long_ago
    )
    assert not sweeps.workers_making_progress()
    assert sweeps.reservations_expire() == 0
    sent.refresh_from_db()
    allocation.refresh_from_db()
    assert (sent.status, allocation.reserved) == ("processing", 2)


def test_orders_waiting_in_a_queue_that_moves_keep_their_reservation(allocation, settings):
    """A deep queue is not a stuck one: while the workers place orders, the ones behind wait
    with their units reserved, however long that takes."""
    waiting = accept(allocation, quantity=1)
    moving = accept(allocation, quantity=1)
    HotOrder.objects.filter(pk=waiting.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))
    HotOrder.objects.filter(pk=moving.pk).update(attempts=1, updated_at=timezone.now())  # a worker has it
    assert sweeps.reservations_expire() == 0
    assert HotOrder.objects.get(pk=waiting.pk).status == "processing"

    # No worker has touched any order for a long while: the waiting one is given up.
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=moving.pk).update(updated_at=long_ago)
    assert sweeps.reservations_expire() == 1
    waiting.refresh_from_db()
    allocation.refresh_from_db()
    assert (waiting.status, waiting.stage, allocation.reserved) == ("failed", "expired", 1)


@pytest.mark.django_db(transaction=True)
def test_outbox_sweep_publishes_what_the_commit_did_not(allocation, settings):
    """A crash between commit and publish leaves the outbox row; the sweeper sends it."""
    broker_purge()
    with transaction.atomic():
        order = HotOrder.objects.create(
            token="t" * 43,
            idempotency_key="k",
            fingerprint="f",
            product=allocation.product,
            quantity=1,
            unit_price_cents=1,
            customer_name="A",
            customer_email="a@example.com",
            card_last4="4242",
            number="T000001",
            reserved_until=timezone.now(),
        )
        OutboxMessage.objects.create(order=order, created_at=timezone.now() - timedelta(minutes=1))
    assert sweeps.outbox_sweep(older_than_seconds=10) == 1
    assert not OutboxMessage.objects.exists()
    assert broker_depth() == 1
    broker_purge()


@pytest.mark.django_db(transaction=True)
def test_orders_nobody_worked_on_for_long_are_published_again(allocation, settings):
    broker_purge()
    stalled, _recent, parked = accept(allocation), accept(allocation), accept(allocation)
    placement.order_dead_letter(order_id=parked.pk, error="x")
    broker_purge()  # the messages of their acceptance are lost
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=[stalled.pk, parked.pk]).update(updated_at=long_ago)
    assert sweeps.orders_stalled_requeue() == 1
    assert broker_depth() == 1
    assert not OutboxMessage.objects.exists()
    assert sweeps.orders_stalled_requeue() == 0  # touched: not again before it stalls anew
    broker_purge()


def test_beat_runs_the_sweepers_every_few_seconds(settings):
    from config.celery import app

    app.loader.import_default_modules()
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["orders.tasks.outbox_sweep"] <= 10
    assert "orders.tasks.reservation_sweep" in schedule
    assert "orders.tasks.stalled_sweep" in schedule
    assert set(schedule) <= set(app.tasks)


@pytest.mark.django_db(transaction=True)
def test_stalled_orders_are_not_published_again_while_the_workers_make_progress(allocation, settings):
    """In a deep queue, orders untouched for ORDERS_STALL_SECONDS are merely waiting their
    turn: publishing them again every sweep would bury the queue under copies."""
    broker_purge()
    waiting, moving = accept(allocation), accept(allocation)
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=waiting.pk).update(updated_at=long_ago)
    # A worker has just placed another order.
    HotOrder.objects.filter(pk=moving.pk).update(attempts=1, status="complete", updated_at=timezone.now())

    assert sweeps.orders_stalled_requeue() == 0
    assert broker_take_all() == []

    # The queue stopped moving: the order waiting since is published once more.
    HotOrder.objects.filter(pk=moving.pk).update(updated_at=long_ago)
    assert sweeps.orders_stalled_requeue() == 1
    assert [args for _headers, (args, _kwargs, _embed) in broker_take_all()] == [[waiting.pk]]


@pytest.mark.django_db(transaction=True)
def test_orders_a_restarted_broker_lost_are_all_published_again_and_none_expires(allocation, settings):
    """A Redis broker restarted without persistence mid-sale loses every message in its queue
    (1,710 in the drill). Once the queue stops moving, the beat's stalled and reservation
    sweeps run in the same tick: the stalled sweep published 200 orders a stall period, and
    the reservation sweep failed as expired those of the others (202'd, never tried) whose
    reservation had run out meanwhile."""
    from orders import tasks

    allocation.allocated = 300
    allocation.per_order_limit = 1
    allocation.save()
    broker_purge()
    lost = [accept(allocation).pk for _ in range(210)]
    broker_purge()  # the broker restarted: the messages of their acceptance are gone
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=lost).update(
        updated_at=long_ago, reserved_until=timezone.now() - timedelta(seconds=1)
    )

    tasks.reservation_sweep()
    tasks.stalled_sweep()

    assert not HotOrder.objects.filter(stage="expired").exists(), "orders that had a 202 failed as expired"
    published = {args[0] for _headers, (args, _kwargs, _embed) in broker_take_all()}
    assert published == set(lost), f"{len(set(lost) - published)} of {len(lost)} lost orders left unpublished"


@pytest.mark.django_db(transaction=True)
def test_stalled_orders_whose_messages_still_wait_in_the_queue_are_not_published_twice(allocation, settings):
    """No worker runs, but the broker kept the queue: the messages of the orders waiting are
    all there, and copies of every one would double the queue at each stall period. Only as
    many as the queue is short of are published again."""
    from orders.outbox import outbox_publish

    broker_purge()
    waiting = [accept(allocation).pk for _ in range(3)]
    broker_purge()
    OutboxMessage.objects.all().delete()
    for order_id in waiting:  # their messages, as the relay left them in the queue
        OutboxMessage.objects.create(order_id=order_id, created_at=timezone.now())
        outbox_publish(order_id=order_id)
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=waiting).update(updated_at=long_ago)
    assert broker_depth() == 3

    assert sweeps.orders_stalled_requeue() == 0
    assert broker_depth() == 3

    # One of the three messages lost (taken by a worker killed before it acknowledged it, on
    # a broker that does not give it back): one is published again.
    broker_take_all()
    for order_id in waiting[1:]:
        OutboxMessage.objects.create(order_id=order_id, created_at=timezone.now())
        outbox_publish(order_id=order_id)
    assert sweeps.orders_stalled_requeue() == 1
    assert broker_depth() == 3
    broker_purge()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    django_settings.CELERY_BROKER_URL.startswith(("amqp", "pyamqp")),
    reason="RabbitMQ tells only how many messages wait, of every task",
)
def test_lost_orders_are_published_again_whatever_else_waits_in_the_queue_and_none_expires(allocation, settings):
    """The broker lost three orders' messages; the workers start again, and beat's first tick
    sends its sweeps and the relay's run together. The stalled sweep took the queue's length,
    those tasks' messages, for the orders' own: it published none of the three, and the
    reservation sweep failed all three as expired (202'd, never tried, nothing placed)."""
    from celery import current_app

    from orders import tasks

    broker_purge()
    lost = [accept(allocation).pk for _ in range(3)]
    broker_purge()  # the messages of their acceptance are gone
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=lost).update(
        updated_at=long_ago, reserved_until=timezone.now() - timedelta(seconds=1)
    )
    for task in ("events.tasks.consumers_run", "orders.tasks.sale_window_sweep", "orders.tasks.outbox_sweep"):
        current_app.send_task(task)  # beat's tick, waiting in the same queue
    current_app.send_task("orders.tasks.order_process", args=[10**9])  # another order's message

    tasks.reservation_sweep()

    assert not HotOrder.objects.filter(stage="expired").exists(), "orders that had a 202 failed as expired"
    taken = [(headers["task"], args) for headers, (args, _kwargs, _embed) in broker_take_all()]
    republished = sorted(args[0] for task, args in taken if task == "orders.tasks.order_process")
    assert republished == sorted([*lost, 10**9])


@pytest.mark.django_db(transaction=True)
def test_an_order_a_killed_worker_left_is_published_again_while_other_orders_complete(allocation, settings):
    """A worker killed mid-call leaves its order claimed, and Redis gives the message back only
    after its visibility timeout (an hour). The stalled sweep held back while any other order
    made progress, so the order, placed or not, stayed "processing" as long as the sale went
    on (18 minutes in a drill), and its units counted as in flight against the next sale."""
    broker_purge()
    left, moving = accept(allocation), accept(allocation)
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=left.pk).update(
        stage="validating", attempts=1, claimed_by="w-killed", claimed_until=long_ago, updated_at=long_ago
    )
    HotOrder.objects.filter(pk=moving.pk).update(stage="validating", attempts=1, updated_at=timezone.now())
    assert sweeps.workers_making_progress()

    assert sweeps.orders_stalled_requeue() == 1
    assert [args for _headers, (args, _kwargs, _embed) in broker_take_all()] == [[left.pk]]
    # A claim still running is a worker at work: not published.
    HotOrder.objects.filter(pk=left.pk).update(
        claimed_until=timezone.now() + timedelta(seconds=30), updated_at=long_ago
    )
    assert sweeps.orders_stalled_requeue() == 0


@pytest.mark.django_db(transaction=True)
def test_an_order_whose_worker_let_it_go_to_retry_later_is_not_copied_while_the_queue_moves(allocation, settings):
    """A worker that finds the legacy API busy releases its claim and puts the order's message
    back in the queue: in a queue deeper than a stall period, a copy at every sweep would pile
    up behind it, each deferred again."""
    from orders.outbox import outbox_publish

    broker_purge()
    retrying, moving = accept(allocation), accept(allocation)
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=retrying.pk).update(stage="validating", attempts=1, claimed_until=None)
    OutboxMessage.objects.create(order_id=retrying.pk, created_at=timezone.now())
    outbox_publish(order_id=retrying.pk)  # its message, back in the queue
    HotOrder.objects.filter(pk=retrying.pk).update(updated_at=long_ago)
    HotOrder.objects.filter(pk=moving.pk).update(stage="validating", attempts=1, updated_at=timezone.now())

    assert sweeps.orders_stalled_requeue() == 0
    assert broker_depth() == 1
    broker_purge()


@pytest.mark.django_db(transaction=True)
def test_a_left_order_and_lost_ones_are_all_published_in_one_pass(allocation, settings):
    """Publishing the order a killed worker left touches it, which reads as a worker's
    progress: the lost orders never tried were then held back a stall period more."""
    broker_purge()
    left, *lost = [accept(allocation).pk for _ in range(3)]
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=lost).update(updated_at=long_ago)
    HotOrder.objects.filter(pk=left).update(
        stage="validating", attempts=1, claimed_by="w-killed", claimed_until=long_ago, updated_at=long_ago
    )

    assert sweeps.orders_stalled_requeue() == 3
    assert sorted(args[0] for _headers, (args, _kwargs, _embed) in broker_take_all()) == sorted([left, *lost])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_publish_each_lost_order_once(allocation, settings, monkeypatch):
    """Beat sends the stalled sweep and the reservation sweep (which runs the stalled one
    first) in one tick, and two workers run them at once: both read the same lost orders
    before either touched them, and each order was published two or three times."""
    import threading

    from django.db import connection

    from orders import broker_depth

    broker_purge()
    lost = [accept(allocation).pk for _ in range(6)]
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk__in=lost).update(updated_at=long_ago)
    both_read = threading.Barrier(2, timeout=20)
    read = broker_depth.orders_waiting_in_broker

    def read_then_wait():
        waiting = read()
        both_read.wait()  # each sweep has its list of lost orders before either publishes
        return waiting

    monkeypatch.setattr(sweeps, "orders_waiting_in_broker", read_then_wait)
    counts = []

    def sweep():
        try:
            counts.append(sweeps.orders_stalled_requeue())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    published = sorted(args[0] for _headers, (args, _kwargs, _embed) in broker_take_all())
    assert published == sorted(lost), "an order published by both sweeps, or by neither"
    assert sum(counts) == len(lost)


@pytest.mark.django_db(transaction=True)
def test_a_lost_order_the_broker_refuses_again_is_left_to_the_relay_not_counted(allocation, settings, monkeypatch):
    broker_purge()
    lost = accept(allocation)
    broker_purge()
    OutboxMessage.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=lost.pk).update(updated_at=long_ago)
    monkeypatch.setattr(sweeps, "outbox_publish", lambda *, order_id: False)  # the broker away

    assert sweeps.orders_stalled_requeue() == 0
    assert OutboxMessage.objects.filter(order_id=lost.pk).exists()  # the relay sends it once it is back
