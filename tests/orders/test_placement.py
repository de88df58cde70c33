"""Placing orders with the legacy API, as services on the database: the outcomes (complete,
failed, dead-lettered, redriven), the claim that makes redelivery harmless, and the
legacy-capacity permits shared by every worker process, leased on the database's clock."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from legacy_client import LegacyUnavailable
from orders import dead_letters, placement
from orders.models import DeadLetter, HotOrder, LegacySlot, OrderStage, OutboxMessage, Reservation
from tests.orders.conftest import broker_purge, broker_take_all, order_accept_as_buyer, order_claimed


def accept(allocation, **body):
    return order_accept_as_buyer(**body)


def test_complete_confirms_the_reservation_once(allocation):
    order = accept(allocation, quantity=2)
    for _ in range(2):
        order_claimed(order.pk)
        placement.order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (0, 2)
    assert (order.status, order.stage, order.reservation) == ("complete", "sent_to_fulfilment", "confirmed")
    assert order.card_sealed == "" and order.legacy_order_id == 7
    stages = list(order.history.values_list("stage", flat=True))
    assert stages == ["queued", "validating", "payment_authorised", "sent_to_fulfilment"]


@pytest.mark.parametrize("stage", [OrderStage.CARD_DECLINED, OrderStage.SOLD_OUT])
def test_failed_order_releases_its_reservation_once(allocation, stage):
    order = accept(allocation, quantity=2)
    accept(allocation, quantity=1)
    for _ in range(2):
        order_claimed(order.pk)
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
    assert dead_letters.order_redrive(order_id=order.pk, user=admin_user) is True
    assert dead_letters.order_redrive(order_id=order.pk, user=admin_user) is False
    order.refresh_from_db()
    assert order.stage == "queued"
    assert OutboxMessage.objects.filter(order=order).exists()
    assert DeadLetter.objects.get().redriven_by == admin_user


def test_claim_skips_final_and_dead_lettered_orders(allocation):
    done = accept(allocation)
    parked = accept(allocation)
    waiting = accept(allocation)
    order_claimed(done.pk)
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


# --- One delivery at a time: the claim --------------------------------------------------
def test_while_a_claim_lasts_a_second_delivery_sends_nothing_and_is_told_to_wait(allocation, settings):
    # Nothing listens there: a request sent would raise LegacyUnavailable, not OrderClaimed.
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"
    order = accept(allocation)
    assert placement.order_claim(order_id=order.pk, holder="first delivery") is not None

    with pytest.raises(placement.OrderClaimed) as claimed:
        placement.order_send_to_legacy(order_id=order.pk, worker="second")

    assert 0 < claimed.value.retry_in <= placement.order_claim_lease_seconds()
    order.refresh_from_db()
    assert (order.claimed_by, order.attempts, order.last_error) == ("first delivery", 1, "")
    assert not LegacySlot.objects.exclude(holder="").exists()  # no permit taken either


def test_a_claim_ends_with_its_lease_or_its_release(allocation):
    order = accept(allocation)
    placement.order_claim(order_id=order.pk, holder="a")
    placement.order_claim_release(order_id=order.pk, holder="someone else")  # not theirs to end
    with pytest.raises(placement.OrderClaimed):
        placement.order_claim(order_id=order.pk, holder="b")
    placement.order_claim_release(order_id=order.pk, holder="a")
    assert placement.order_claim(order_id=order.pk, holder="b").claimed_by == "b"
    HotOrder.objects.filter(pk=order.pk).update(claimed_until=db_now() - timedelta(seconds=1))  # b died
    assert placement.order_claim(order_id=order.pk, holder="c").attempts == 3


def test_a_worker_sent_away_by_the_legacy_api_lets_the_next_delivery_try_at_once(allocation, settings):
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # connection refused: nothing was sent
    order = accept(allocation)
    with pytest.raises(LegacyUnavailable):
        placement.order_send_to_legacy(order_id=order.pk)
    order.refresh_from_db()
    assert (order.claimed_by, order.claimed_until) == ("", None)
    assert not LegacySlot.objects.exclude(holder="").exists()


def test_an_answer_of_201_without_the_order_is_asked_again_never_taken_as_placed(allocation, monkeypatch):
    """A proxy's page or a body cut short after a 201: the order may be placed, so its claim and
    permit wait for the lease and it is sent again under its reference, which the legacy API
    answers with the order. Before, it was completed with no legacy number, and its units put
    back on sale as if the hold had not been drawn on (the answer named no hold)."""
    import legacy_client.orders
    from legacy_client.transport import LegacyResponse

    order = accept(allocation)
    cut_short = LegacyResponse(status=201, data={"error": "unreadable", "body": "<html>Thank you</html>"})
    sent: list[dict] = []

    def legacy_api(method, path, body=None, **kwargs):
        sent.append(body)
        if len(sent) == 1:
            return cut_short
        return LegacyResponse(status=200, data={"id": 7, "number": "L00000007", "hold": body.get("hold")})

    monkeypatch.setattr(legacy_client.orders, "request", legacy_api)

    with pytest.raises(LegacyUnavailable) as unknown:
        placement.order_send_to_legacy(order_id=order.pk)
    order.refresh_from_db()
    assert unknown.value.sent and order.status == "processing" and order.claimed_until is not None
    assert "without the order" in order.last_error

    HotOrder.objects.filter(pk=order.pk).update(claimed_until=timezone.now())  # its lease over
    LegacySlot.objects.update(holder="", lease_until=None)
    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.legacy_number) == ("complete", "L00000007")
    assert (allocation.reserved, allocation.sold) == (0, 1)
    assert [body["reference"] for body in sent] == [order.reference] * 2


# --- Leases on the database's clock -------------------------------------------------------
def db_now():
    """The database's clock as Now() reads it (PostgreSQL: the statement's time, not the
    transaction's, which a test's transaction would hold still)."""
    with connection.cursor() as cursor:
        postgres = connection.vendor == "postgresql"
        cursor.execute("SELECT statement_timestamp()" if postgres else "SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite: UTC as text
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


@pytest.fixture
def clock_20_seconds_ahead(monkeypatch):
    """This host's clock runs 20 s ahead of the database's (and of the other hosts')."""
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=20))


def test_a_host_whose_clock_runs_ahead_cannot_take_permits_still_held(db, settings, clock_20_seconds_ahead):
    settings.LEGACY_CAPACITY = settings.ORDERS_LEGACY_CONCURRENCY = 1
    assert placement.legacy_slot_acquire(holder="a worker", wait_seconds=0) == 1
    LegacySlot.objects.filter(number=1).update(lease_until=db_now() + timedelta(seconds=10))
    assert placement.legacy_slot_acquire(holder="a worker 20 s ahead", wait_seconds=0) is None
    assert LegacySlot.objects.get(number=1).holder == "a worker"


def test_a_host_whose_clock_runs_ahead_cannot_take_an_order_still_claimed(allocation, clock_20_seconds_ahead):
    order = accept(allocation)
    placement.order_claim(order_id=order.pk, holder="a worker")
    HotOrder.objects.filter(pk=order.pk).update(claimed_until=db_now() + timedelta(seconds=10))
    with pytest.raises(placement.OrderClaimed):
        placement.order_claim(order_id=order.pk, holder="a worker 20 s ahead")


def test_claims_and_permits_are_leased_from_the_database_clock(allocation, settings, clock_20_seconds_ahead):
    order = accept(allocation)
    before = db_now()
    claimed = placement.order_claim(order_id=order.pk, holder="w")
    slot = placement.legacy_slot_acquire(holder="w", wait_seconds=0)
    after = db_now()
    lease = timedelta(seconds=placement.order_claim_lease_seconds())
    assert before + lease <= HotOrder.objects.get(pk=claimed.pk).claimed_until <= after + lease
    permit = timedelta(seconds=placement.legacy_slot_lease_seconds())
    assert before + permit <= LegacySlot.objects.get(number=slot).lease_until <= after + permit


# --- Waiting for a permit -----------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_worker_waiting_for_a_permit_backs_off_instead_of_polling(settings):
    from django.test.utils import CaptureQueriesContext

    settings.LEGACY_CAPACITY = settings.ORDERS_LEGACY_CONCURRENCY = 1
    assert placement.legacy_slot_acquire(holder="busy", wait_seconds=0) == 1
    with CaptureQueriesContext(connection) as queries:
        assert placement.legacy_slot_acquire(holder="waiting", wait_seconds=1.5) is None
    # A look is a SELECT of the permits, or on PostgreSQL the one statement that takes a free one.
    looks = [
        q
        for q in queries.captured_queries
        if "orders_legacyslot" in q["sql"] and (q["sql"].startswith("SELECT") or "SKIP LOCKED" in q["sql"])
    ]
    # Polling every 10-30 ms was 50 or more looks in 1.5 s. Waits doubling from 10 ms to 0.5 s,
    # each cut by a jitter of up to half, make at most about 14 (and the busiest machine only
    # makes fewer: a late wake-up is a longer wait), so 20 tells one from the other.
    assert 2 <= len(looks) <= 20, len(looks)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_released_permit_goes_to_the_worker_waiting_for_it(settings):
    settings.LEGACY_CAPACITY = settings.ORDERS_LEGACY_CONCURRENCY = 1
    assert placement.legacy_slot_acquire(holder="busy", wait_seconds=0) == 1
    got, waiting = [], threading.Event()

    def wait_for_a_permit():
        try:
            waiting.set()
            got.append(placement.legacy_slot_acquire(holder="waiting", wait_seconds=60))
        finally:
            connection.close()

    waiter = threading.Thread(target=wait_for_a_permit)
    waiter.start()
    waiting.wait()
    placement.legacy_slot_release(number=1, holder="busy")
    waiter.join()
    assert got == [1]
    assert LegacySlot.objects.get(number=1).holder == "waiting"


def test_a_placed_order_whose_email_could_not_be_sent_is_confirmed_by_the_sweep(
    allocation, django_capture_on_commit_callbacks, monkeypatch
):
    from shop import confirmations, emails
    from shop.models import OrderEmail

    order = accept(allocation)
    order_claimed(order.pk)

    def refuse(**_kwargs):
        raise ConnectionRefusedError("mail server down")

    real_send_mail = emails.send_mail
    monkeypatch.setattr(emails, "send_mail", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        placement.order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    kept = OrderEmail.objects.get(number=order.number)
    assert kept.sent_at is None and kept.attempts == 1 and mail.outbox == []

    monkeypatch.setattr(emails, "send_mail", real_send_mail)
    OrderEmail.objects.filter(pk=kept.pk).update(held_until=timezone.now() - timedelta(seconds=1))  # its hold over
    assert confirmations.confirmations_unsent_sweep().sent == 1
    assert [m.subject for m in mail.outbox] == [f"Your order {order.number} is confirmed"]
    assert mail.outbox[0].to == [order.customer_email]


@pytest.mark.parametrize(
    ("stage", "reason"),
    [
        (OrderStage.CARD_DECLINED, "Your card was declined; nothing was charged"),
        (OrderStage.SOLD_OUT, "sold out before your order could be placed; nothing was charged"),
    ],
)
def test_a_buyer_whose_accepted_order_fails_is_told_once_by_email(
    allocation, django_capture_on_commit_callbacks, stage, reason
):
    """A 202 said "reserved": a buyer who left the page learns by email that the order was not
    placed after all, and why, once however often the failure is recorded."""
    order = accept(allocation, quantity=2)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            order_claimed(order.pk)
            placement.order_fail(order_id=order.pk, stage=stage)
    told = [message for message in mail.outbox if order.customer_email in message.to]
    assert [message.subject for message in told] == [f"We could not place your order {order.number}"]
    assert reason in told[0].body and "2 x Muskie Casting Rod" in told[0].body
    assert f"/orders/{order.number}/" in told[0].body


def test_an_order_failed_then_placed_after_all_is_not_told_not_placed_last(
    allocation, django_capture_on_commit_callbacks, monkeypatch
):
    """Its "not placed" email could not be sent (the mail server was down); the legacy API then
    turns out to have placed it: the buyer is told it is confirmed, and never "not placed" after."""
    from shop import confirmations, emails
    from shop.models import OrderEmail

    order = accept(allocation)
    order_claimed(order.pk)
    real_send_mail = emails.send_mail

    def refuse(**_kwargs):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(emails, "send_mail", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        placement.order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED)
    assert OrderEmail.objects.get(number=order.number).kind == "not_placed"
    monkeypatch.setattr(emails, "send_mail", real_send_mail)
    with django_capture_on_commit_callbacks(execute=True):
        placement.order_complete(order_id=order.pk, legacy_order_id=9, legacy_number="L00000009")
    OrderEmail.objects.update(held_until=None)
    confirmations.confirmations_unsent_sweep()
    assert [m.subject for m in mail.outbox] == [f"Your order {order.number} is confirmed"]
    assert list(OrderEmail.objects.values_list("kind", flat=True)) == ["confirmed"]
