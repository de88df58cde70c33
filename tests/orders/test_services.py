"""The hot path's command-side services on the database: order numbers, reservations, the
outbox, the sweepers (stalled orders, expired reservations) and their beat schedule."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import placement, services
from orders.models import HotOrder, OutboxMessage, SaleAllocation
from tests.orders.conftest import broker_depth, broker_purge, broker_take_all, order_accept_as_buyer


def accept(allocation, **body):
    return order_accept_as_buyer(**body)


def test_order_number_counter_is_unique_and_increasing(db):
    numbers = [services.order_number_next() for _ in range(5)]
    values = [int(n[1:]) for n in numbers]
    assert all(n.startswith("T") for n in numbers)
    assert values == sorted(values) and len(set(values)) == 5


def test_reserve_never_takes_more_than_the_allocation(allocation):
    services.allocation_reserve(allocation_id=allocation.pk, quantity=15)
    with pytest.raises(services.SoldOut):
        services.allocation_reserve(allocation_id=allocation.pk, quantity=6)
    services.allocation_reserve(allocation_id=allocation.pk, quantity=5)
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.remaining) == (20, 0)


def test_database_refuses_an_oversold_allocation(allocation):
    with pytest.raises(IntegrityError), transaction.atomic():
        SaleAllocation.objects.filter(pk=allocation.pk).update(sold=21)


def test_unconfirmed_reservations_expire_and_return_to_the_allocation(allocation):
    stale = accept(allocation, quantity=2)
    fresh = accept(allocation, quantity=1)
    parked = accept(allocation, quantity=1)
    placement.order_dead_letter(order_id=parked.pk, error="legacy API down")
    HotOrder.objects.filter(pk__in=[stale.pk, parked.pk]).update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert services.reservations_expire() == 1
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
    assert not services.workers_making_progress()
    assert services.reservations_expire() == 0
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
    assert services.reservations_expire() == 0
    assert HotOrder.objects.get(pk=waiting.pk).status == "processing"

    # No worker has touched any order for a long while: the waiting one is given up.
    long_ago = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS + 1)
    HotOrder.objects.filter(pk=moving.pk).update(updated_at=long_ago)
    assert services.reservations_expire() == 1
    waiting.refresh_from_db()
    allocation.refresh_from_db()
    assert (waiting.status, waiting.stage, allocation.reserved) == ("failed", "expired", 1)


def test_a_restarting_database_makes_the_worker_retry_not_fail(allocation, monkeypatch):
    from django.db import OperationalError

    from orders.tasks import order_process

    order = accept(allocation)
    calls = []

    def database_restarting(**kwargs):
        calls.append(kwargs)
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(placement, "order_send_to_legacy", database_restarting)
    # Run eagerly, the retries follow at once; once they are spent the order is parked for a
    # merchant, never failed and never dropped.
    result = order_process.apply(args=(order.pk,))
    assert len(calls) == order_process.max_retries + 1
    assert result.result == "dead_lettered"
    order.refresh_from_db()
    assert (order.status, order.stage) == ("processing", "dead_lettered")


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
    assert services.outbox_sweep(older_than_seconds=10) == 1
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
    assert services.orders_stalled_requeue() == 1
    assert broker_depth() == 1
    assert not OutboxMessage.objects.exists()
    assert services.orders_stalled_requeue() == 0  # touched: not again before it stalls anew
    broker_purge()


def test_beat_runs_the_sweepers_every_few_seconds(settings):
    from config.celery import app

    app.loader.import_default_modules()
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["orders.tasks.outbox_sweep"] <= 10
    assert "orders.tasks.reservation_sweep" in schedule
    assert "orders.tasks.stalled_sweep" in schedule
    assert set(schedule) <= set(app.tasks)


def test_cached_units_left_never_counts_an_order_twice(allocation, django_capture_on_commit_callbacks):
    """A buyer may refill the cached figure from the database between an order's commit and
    its after-commit hook; the hook must not then take the order off a second time."""
    from django.core.cache import cache

    from orders.selectors import allocation_remaining, remaining_cache_key

    before = allocation_remaining(allocation_id=allocation.pk)
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        accept(allocation, quantity=1)
    assert allocation_remaining(allocation_id=allocation.pk) == before  # still the cached figure
    cache.delete(remaining_cache_key(allocation.pk))
    assert allocation_remaining(allocation_id=allocation.pk) == before - 1  # refilled after the commit
    for hook in hooks:
        hook()
    assert allocation_remaining(allocation_id=allocation.pk) == before - 1


def test_a_retry_sent_to_the_monolith_finds_the_order_the_hot_path_took(allocation):
    """Both sides give the legacy API the same reference for one Idempotency-Key, so a buyer's
    retry that the edge routes to the monolith cannot place a second order."""
    from shop.legacy_client import reference_for_key

    order = order_accept_as_buyer(idempotency_key="buyer-key-1")
    assert order.reference == reference_for_key("buyer-key-1")
    assert len(order.reference) <= 64


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm transaction"])
def test_both_ways_of_accepting_write_the_same_records(
    allocation, monkeypatch, django_capture_on_commit_callbacks, one_statement
):
    """PostgreSQL accepts in one statement, other databases through the ORM: the same rows,
    the same refusals, the same replays."""
    from django.db import connection

    if one_statement and connection.vendor != "postgresql":
        pytest.skip("one statement needs PostgreSQL")
    monkeypatch.setattr(services, "_accept_in_one_statement", lambda: one_statement)
    allocation.allocated = 3
    allocation.save()
    with django_capture_on_commit_callbacks(execute=False):  # not published: the outbox row stays
        order = order_accept_as_buyer(idempotency_key="both-1", quantity=2, name="Ann Lee", email="ann@example.com")
    stored = HotOrder.objects.get(pk=order.pk)
    assert stored.number == order.number and stored.number.startswith("T") and len(stored.number) >= 7
    assert (stored.quantity, stored.customer_name, stored.customer_email) == (2, "Ann Lee", "ann@example.com")
    assert (stored.status, stored.stage, stored.reservation) == ("processing", "queued", "held")
    assert (stored.token, stored.fingerprint, stored.card_last4) == (order.token, order.fingerprint, "4242")
    assert stored.unit_price_cents == order.unit_price_cents and stored.attempts == 0
    assert list(stored.history.values_list("stage", "detail")) == [("queued", services.ACCEPTED_DETAIL)]
    assert OutboxMessage.objects.filter(order=stored).exists()
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (2, 0)

    again = order_accept_as_buyer(idempotency_key="both-1", quantity=2, name="Ann Lee", email="ann@example.com")
    assert again.pk == order.pk
    with pytest.raises(services.SoldOut):
        order_accept_as_buyer(idempotency_key="both-2", quantity=2)
    allocation.refresh_from_db()
    assert allocation.reserved == 2 and HotOrder.objects.count() == 1


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

    assert services.orders_stalled_requeue() == 0
    assert broker_take_all() == []

    # The queue stopped moving: the order waiting since is published once more.
    HotOrder.objects.filter(pk=moving.pk).update(updated_at=long_ago)
    assert services.orders_stalled_requeue() == 1
    assert [args for _headers, (args, _kwargs, _embed) in broker_take_all()] == [[waiting.pk]]


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm transaction"])
def test_the_sale_window_is_judged_by_the_database_clock_not_the_web_hosts(allocation, monkeypatch, one_statement):
    """A web host whose clock runs 20 s ahead must not open a sale the database says has not
    started: every host judges the window by one clock."""
    from django.db import connection

    if one_statement and connection.vendor != "postgresql":
        pytest.skip("one statement needs PostgreSQL")
    monkeypatch.setattr(services, "_accept_in_one_statement", lambda: one_statement)
    real_now = timezone.now
    allocation.starts_at = real_now() + timedelta(seconds=10)
    allocation.save()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=20))

    with pytest.raises(services.SaleNotStarted):
        accept(allocation)

    allocation.refresh_from_db()
    assert allocation.reserved == 0 and not HotOrder.objects.exists()
