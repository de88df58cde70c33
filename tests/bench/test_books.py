"""The benchmark's check of the unified log against the books: one ACCEPTED and one terminal
hot-path event per accepted order, "not wired" while the hot path writes none, and the
consumers' lag sampled from their checkpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bench.books import ConsumerLag, log_check, payments_unmatched
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
