"""The benchmark's check of the unified log against the books: one ACCEPTED and one terminal
hot-path event per accepted order, "not wired" while the hot path writes none, and the
consumers' lag sampled from their checkpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bench.books import ConsumerLag, books_check, log_check, payments_unmatched
from bench.drills import Replays
from events.models import Checkpoint, Event
from events.services import event_append
from legacy_api.payments import APPROVED_CARD, payment_authorise, payment_figures, payment_void
from tests.conftest import eventually


def hot_event(number: str, status: str, *, source: str = "shop.hotpath", key: str = "number") -> Event:
    return event_append(
        source=source,
        detail_type="State change Notification",
        type="CHECKOUT",
        subtype="ORDER",
        status=status,
        data={key: number, "quantity": 1},
    )


@pytest.mark.django_db
def test_log_without_a_hot_path_event_is_not_wired_and_no_failure():
    hot_event("H000001", "ACCEPTED", source="legacy.orders")

    assert log_check(["H000001"]) == {"log": "not wired", "log_mismatched": 0}


@pytest.mark.django_db
def test_log_holds_when_each_accepted_order_has_one_accepted_and_one_terminal_event():
    for number, end in (("H000001", "COMPLETE"), ("H000002", "FAILED")):
        hot_event(number, "ACCEPTED")
        hot_event(number, "PAYMENT_AUTHORISED")  # a stage between the two counts for neither
        hot_event(number, end, key="order_number")  # as the log's own examples name it
    hot_event("H000099", "ACCEPTED")  # not among this run's 202s: another run's business

    books = log_check(["H000001", "H000002"])

    assert (books["log"], books["log_mismatched"]) == ("ok", 0)


@pytest.mark.django_db
def test_log_fails_on_a_missing_or_a_repeated_event():
    hot_event("H000001", "ACCEPTED")
    hot_event("H000001", "COMPLETE")
    hot_event("H000002", "ACCEPTED")  # never finished
    hot_event("H000003", "ACCEPTED")
    hot_event("H000003", "ACCEPTED")  # accepted twice
    hot_event("H000003", "complete")
    hot_event("H000004", "COMPLETE")  # finished, never accepted
    hot_event("H000005", "ACCEPTED")
    hot_event("H000005", "COMPLETE")
    hot_event("H000005", "FAILED")  # two ends

    books = log_check(["H000001", "H000002", "H000003", "H000004", "H000005", "H000006"])

    assert books["log"] == "mismatch"
    assert books["log_mismatched_numbers"] == ["H000002", "H000003", "H000004", "H000005", "H000006"]
    assert books["log_mismatched"] == 5
    assert (books["log_accepted_missing"], books["log_accepted_twice"]) == (2, 1)
    assert (books["log_terminal_missing"], books["log_terminal_twice"]) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_consumer_lag_is_the_age_of_the_oldest_event_a_consumer_has_yet_to_process():
    Checkpoint.objects.create(consumer="tally")
    hot_event("H000001", "ACCEPTED")
    Event.objects.update(time=timezone.now() - timedelta(minutes=10))

    lag = ConsumerLag(interval=0.05)
    lag.start()
    eventually(lambda: len(lag.samples.get("tally", [])) >= 3, message="no lag was sampled")
    summary = lag.stop()

    assert summary["tally"]["p99_seconds"] >= 600
    assert summary["tally"]["samples"] >= 3


@pytest.mark.django_db(transaction=True)
def test_consumer_lag_says_so_when_no_consumer_is_registered(settings):
    settings.EVENT_CONSUMERS = {}
    lag = ConsumerLag(interval=0.05)
    lag.start()

    assert lag.stop() == {"consumers": "none registered"}


@pytest.mark.django_db
def test_an_authorisation_voided_when_its_order_failed_is_no_difference_and_a_live_one_is():
    # Two orders placed; a third failed after its card was authorised (the stock ran out), and
    # the legacy API voided that authorisation: nothing was charged without an order.
    for key in ("placed-1", "placed-2", "failed-1"):
        payment_authorise(key=key, card_number=APPROVED_CARD, amount_cents=100)
    payment_void(key="failed-1")
    assert payments_unmatched(payment_figures(), 2) == 0

    # An authorisation still live for an order never placed is a difference.
    payment_authorise(key="never-placed", card_number=APPROVED_CARD, amount_cents=100)
    assert payments_unmatched(payment_figures(), 2) == 1


@pytest.mark.django_db
def test_a_declined_card_ends_its_order_kept_and_any_other_end_short_of_complete_is_lost():
    from orders.models import HotOrder, OrderStage, OrderStatus, SaleAllocation
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    product = Product.objects.create(category=rods, title="Rod", slug="rod", price_cents=100, stock=10)
    SaleAllocation.objects.create(product=product, is_hot=True, allocated=3, sold=1)
    now = timezone.now()
    ends = {
        "T000001": (OrderStatus.COMPLETE, OrderStage.SENT_TO_FULFILMENT),
        "T000002": (OrderStatus.FAILED, OrderStage.CARD_DECLINED),
        "T000003": (OrderStatus.FAILED, OrderStage.SOLD_OUT),
        "T000004": (OrderStatus.PROCESSING, OrderStage.QUEUED),
    }
    for n, (number, (status, stage)) in enumerate(ends.items()):
        HotOrder.objects.create(
            number=number,
            token=f"t{n}",
            idempotency_key=f"k{n}",
            product=product,
            quantity=1,
            unit_price_cents=100,
            status=status,
            stage=stage,
            reserved_until=now,
            created_at=now,
            updated_at=now,
        )

    books = books_check("rod", list(ends), allocation=3)

    assert (books["completed"], books["declined"], books["lost"]) == (1, 1, 2)
    assert books["lost_numbers"] == ["T000003", "T000004"]


def test_a_replay_counts_as_wrong_unless_it_was_given_its_own_order():
    replays = Replays()
    replays.add(number="T000001", status=202, body=b'{"number": "T000001"}')
    replays.add(number="T000002", status=202, body=b'{"number": "T000009"}')
    replays.add(number="T000003", status=409, body=b'{"error": "sold_out"}')
    replays.add(number="T000004", status=0, body=b"")

    assert replays.sent == 4
    assert [wrong.split(":")[0] for wrong in replays.wrong] == ["T000002", "T000003", "T000004"]


@pytest.mark.django_db
def test_the_legacy_api_s_orders_in_the_drain_s_window_count_every_caller_s_placed_orders():
    from bench.books import legacy_orders_placed
    from legacy_api.models import Order

    start = timezone.now()

    def order(reference: str, seconds: float, status: str = Order.Status.PLACED) -> None:
        Order.objects.create(
            reference=reference,
            status=status,
            customer_name="Ann",
            customer_email="ann@example.com",
            card_last4="4242",
            authorisation_code="A1",
            total_cents=100,
            processing_ms=40,
            created_at=start + timedelta(seconds=seconds),
        )

    order("key-hot-1", 1)  # a worker's
    order("checkout-1", 2)  # the storefront's
    order("key-hot-2", 5, status=Order.Status.PENDING)  # claimed, not placed
    order("key-hot-3", 11)  # after the window

    assert legacy_orders_placed(start, start + timedelta(seconds=10)) == 2
    assert legacy_orders_placed(start + timedelta(seconds=1.5), start + timedelta(seconds=12)) == 2
