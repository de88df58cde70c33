"""Placing orders with the legacy API, as services on the database: the outcomes (complete,
failed, dead-lettered, redriven), the claim that makes redelivery harmless, and the
legacy-capacity permits shared by every worker process."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from orders import placement
from orders.models import DeadLetter, LegacySlot, OrderStage, OutboxMessage, Reservation
from tests.orders.conftest import broker_purge, broker_take_all, order_accept_as_buyer


def accept(allocation, **body):
    return order_accept_as_buyer(**body)


def test_complete_confirms_the_reservation_once(allocation):
    order = accept(allocation, quantity=2)
    for _ in range(2):
        placement.order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (0, 2)
    assert (order.status, order.stage, order.reservation) == ("complete", "sent_to_fulfilment", "confirmed")
    assert order.card_sealed == "" and order.legacy_order_id == 7
    stages = list(order.history.values_list("stage", flat=True))
    assert stages == ["queued", "payment_authorised", "sent_to_fulfilment"]


@pytest.mark.parametrize("stage", [OrderStage.CARD_DECLINED, OrderStage.SOLD_OUT])
def test_failed_order_releases_its_reservation_once(allocation, stage):
    order = accept(allocation, quantity=2)
    accept(allocation, quantity=1)
    for _ in range(2):
        placement.order_fail(order_id=order.pk, stage=stage)
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.stage, order.reservation) == ("failed", stage, "released")
    assert (allocation.reserved, allocation.sold) == (1, 0)
    assert order.card_sealed == ""


def test_dead_letter_is_recorded_once_and_merchants_are_emailed(allocation, django_capture_on_commit_callbacks):
    order = accept(allocation)
    with django_capture_on_commit_callbacks(execute=True):
        placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503")
        placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503")
    order.refresh_from_db()
    assert order.stage == "dead_lettered" and order.status == "processing"
    assert order.reservation == Reservation.HELD
    letter = DeadLetter.objects.get()
    assert letter.error == "legacy API answered 503"
    assert len(mail.outbox) == 1
    assert order.number in mail.outbox[0].subject
    assert mail.outbox[0].to == ["merchant@example.com"]


def test_redrive_queues_a_dead_letter_again(allocation, admin_user):
    order = accept(allocation)
    OutboxMessage.objects.all().delete()
    placement.order_dead_letter(order_id=order.pk, error="boom")
    assert placement.order_redrive(order_id=order.pk, user=admin_user) is True
    assert placement.order_redrive(order_id=order.pk, user=admin_user) is False
    order.refresh_from_db()
    assert order.stage == "queued"
    assert OutboxMessage.objects.filter(order=order).exists()
    assert DeadLetter.objects.get().redriven_by == admin_user


def test_claim_skips_final_and_dead_lettered_orders(allocation):
    done = accept(allocation)
    parked = accept(allocation)
    waiting = accept(allocation)
    placement.order_complete(order_id=done.pk, legacy_order_id=1, legacy_number="L1")
    placement.order_dead_letter(order_id=parked.pk, error="x")
    assert placement.order_claim(order_id=done.pk) is None
    assert placement.order_claim(order_id=parked.pk) is None
    assert placement.order_claim(order_id=999999) is None
    claimed = placement.order_claim(order_id=waiting.pk)
    assert claimed.stage == "validating" and claimed.attempts == 1
    assert not OutboxMessage.objects.filter(order=waiting).exists()


def test_legacy_permits_are_limited_to_the_capacity_and_leased(db, settings):
    settings.LEGACY_CAPACITY = 2
    settings.ORDERS_LEGACY_CONCURRENCY = 5
    first = placement.legacy_slot_acquire(holder="a", wait_seconds=0)
    second = placement.legacy_slot_acquire(holder="b", wait_seconds=0)
    assert {first, second} == {1, 2}
    assert placement.legacy_slot_acquire(holder="c", wait_seconds=0) is None
    placement.legacy_slot_release(number=first, holder="a")
    assert placement.legacy_slot_acquire(holder="c", wait_seconds=0) == first
    # A permit whose holder died frees itself when its lease ends.
    LegacySlot.objects.filter(number=second).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert placement.legacy_slot_acquire(holder="d", wait_seconds=0) == second


def test_workers_leave_legacy_capacity_to_the_storefront_when_told_to(db, settings):
    settings.LEGACY_CAPACITY = 3
    settings.ORDERS_LEGACY_CONCURRENCY = 2
    assert {placement.legacy_slot_acquire(holder=h, wait_seconds=0) for h in "ab"} == {1, 2}
    assert placement.legacy_slot_acquire(holder="c", wait_seconds=0) is None


def test_a_worker_kept_waiting_for_a_permit_queues_the_order_again_without_using_a_retry(allocation, settings):
    """Many workers sharing few permits wait their turn: that must not count as a failed
    attempt, or a deep queue would dead-letter orders the legacy API could take."""
    from orders import tasks

    broker_purge()
    order = accept(allocation)
    settings.LEGACY_CAPACITY = 2
    settings.ORDERS_LEGACY_CONCURRENCY = 1
    settings.ORDERS_SLOT_WAIT_SECONDS = 0
    assert placement.legacy_slot_acquire(holder="another worker", wait_seconds=0) == 1

    result = tasks.order_process.apply(args=[order.pk], retries=settings.ORDERS_MAX_RETRIES)

    assert result.get() == "deferred"
    [(headers, (args, _kwargs, _embed))] = broker_take_all()
    assert (headers["task"], args) == ("orders.tasks.order_process", [order.pk])
    assert headers["retries"] == settings.ORDERS_MAX_RETRIES and headers["eta"]  # later, same retries used
    assert not DeadLetter.objects.exists()
    order.refresh_from_db()
    assert (order.status, order.reservation) == ("processing", Reservation.HELD)
    assert order.stage != OrderStage.DEAD_LETTERED and "capacity" in order.last_error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_permit_takers_never_exceed_the_capacity(settings):
    settings.LEGACY_CAPACITY = 3
    settings.ORDERS_LEGACY_CONCURRENCY = 3
    taken, barrier = [], threading.Barrier(12)

    def take(i):
        try:
            barrier.wait()
            slot = placement.legacy_slot_acquire(holder=f"h{i}", wait_seconds=0.5)
            if slot is not None:
                taken.append(slot)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [1, 2, 3]
