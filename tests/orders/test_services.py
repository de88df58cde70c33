"""The hot path's command-side services on the database: order numbers, reservations, both
ways of accepting, the sale window on the database's clock, and retries of a worker whose
database restarts."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import acceptance, placement, services
from orders.models import HotOrder, OutboxMessage, SaleAllocation
from tests.orders.conftest import order_accept_as_buyer


def accept(allocation, **body):
    return order_accept_as_buyer(**body)


def test_order_number_counter_is_unique_and_increasing(db):
    numbers = [acceptance.order_number_next() for _ in range(5)]
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


def test_retries_wait_between_half_and_all_of_their_backoff_and_honour_retry_after(settings):
    from orders.tasks import retry_countdown

    settings.ORDERS_RETRY_BACKOFF, settings.ORDERS_RETRY_BACKOFF_MAX = 2, 60
    for retries, nominal in [(0, 2), (1, 4), (4, 32), (5, 60), (7, 60)]:
        waits = [retry_countdown(retries) for _ in range(200)]
        assert nominal / 2 <= min(waits) and max(waits) <= nominal, (retries, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered: orders failing together do not return together
    assert retry_countdown(0, retry_after=30) == 30
    # A Retry-After far ahead (a proxy's date next week) waits no longer than the longest backoff.
    assert retry_countdown(0, retry_after=7 * 86400) == 60
    # The whole schedule lasts at least half its length: an outage shorter than that dead-letters nothing.
    assert sum(retry_countdown(n) for n in range(8)) >= (2 + 4 + 8 + 16 + 32 + 60 + 60 + 60) / 2


def test_an_order_the_legacy_api_is_still_placing_waits_without_spending_its_retries(allocation, monkeypatch):
    import time

    from orders.tasks import order_process

    order = accept(allocation)

    def still_placing(**kwargs):
        raise placement.LegacyStillPlacing("legacy API is still placing the order", retry_in=1)

    monkeypatch.setattr(placement, "order_send_to_legacy", still_placing)
    queued = []
    monkeypatch.setattr(order_process, "apply_async", lambda **options: queued.append(options))
    result = order_process.apply(args=(order.pk,))
    assert result.result == "deferred"
    [again] = queued
    assert again["retries"] == 0 and again["countdown"] >= 1
    since = again["kwargs"]["still_placing_since"]
    assert time.time() - 5 < since <= time.time()

    # The same answers past ORDERS_STILL_PLACING_SECONDS count as failed attempts: the retries
    # run out and the order is parked for a merchant, never left waiting unseen.
    long_ago = time.time() - 301
    result = order_process.apply(args=(order.pk,), kwargs={"still_placing_since": long_ago})
    assert result.result == "dead_lettered"
    order.refresh_from_db()
    assert (order.status, order.stage) == ("processing", "dead_lettered")
    assert "still placing" in order.dead_letters.get().error


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


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm transaction"])
def test_both_ways_of_accepting_write_the_same_records(
    allocation, monkeypatch, django_capture_on_commit_callbacks, one_statement
):
    """PostgreSQL accepts in one statement, other databases through the ORM: the same rows,
    the same refusals, the same replays."""
    from django.db import connection

    if one_statement and connection.vendor != "postgresql":
        pytest.skip("one statement needs PostgreSQL")
    monkeypatch.setattr(acceptance, "_accept_in_one_statement", lambda: one_statement)
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
    assert list(stored.history.values_list("stage", "detail")) == [("queued", acceptance.ACCEPTED_DETAIL)]
    assert OutboxMessage.objects.filter(order=stored).exists()
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (2, 0)

    again = order_accept_as_buyer(idempotency_key="both-1", quantity=2, name="Ann Lee", email="ann@example.com")
    assert again.pk == order.pk
    with pytest.raises(services.SoldOut):
        order_accept_as_buyer(idempotency_key="both-2", quantity=2)
    allocation.refresh_from_db()
    assert allocation.reserved == 2 and HotOrder.objects.count() == 1


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm transaction"])
def test_the_sale_window_is_judged_by_the_database_clock_not_the_web_hosts(allocation, monkeypatch, one_statement):
    """A web host whose clock runs 20 s ahead must not open a sale the database says has not
    started: every host judges the window by one clock."""
    from django.db import connection

    if one_statement and connection.vendor != "postgresql":
        pytest.skip("one statement needs PostgreSQL")
    monkeypatch.setattr(acceptance, "_accept_in_one_statement", lambda: one_statement)
    real_now = timezone.now
    allocation.starts_at = real_now() + timedelta(seconds=10)
    allocation.save()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=20))

    with pytest.raises(services.SaleNotStarted):
        accept(allocation)

    allocation.refresh_from_db()
    assert allocation.reserved == 0 and not HotOrder.objects.exists()
