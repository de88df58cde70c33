"""the inventory true-up "corrects" a difference that is only an open dead letter of the
view: it logs a correction for the event the view could not fold in. Once the cause is fixed
and the merchant redrives the letter (or a rebuild folds it in and settles it), the event is
counted a second time: the view drifts from the stock of record by exactly that event."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import F

from events.consumers import consumer_run_all
from events.dead_letters import dead_letter_redrive
from events.models import DeadLetter
from events.services import event_append
from readmodels.inventory import InventoryView, inventory_true_up
from readmodels.selectors import inventory_figures
from shop.models import Product
from tests.readmodels.conftest import catch_up, dead_lettered_in, place, settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_redrive_after_a_true_up_counts_the_dead_lettered_order_once(catalogue, settings, monkeypatch):
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    inventory_true_up()  # the catalogue's stock into the view, as the beat does
    catch_up()
    failing = place("spinning-reel", 3)
    # A bug (or a hiccup) in the view, fixed later.
    dead_lettered_in(
        monkeypatch, InventoryView, consumer="inventory", failing=lambda e: e.data.get("order") == failing.number
    )

    inventory_true_up()  # the beat's true-up, every minute
    catch_up("inventory")
    monkeypatch.undo()  # the cause fixed: the merchant redrives the letter, as the admin offers
    letter = DeadLetter.objects.get(consumer="inventory")
    assert dead_letter_redrive(dead_letter_id=letter.pk) is True

    record = Product.objects.get(slug="spinning-reel")
    view = inventory_figures(product="spinning-reel")
    assert view["on_hand"] == record.stock, f"view {view['on_hand']} on hand, stock of record {record.stock}"


def test_an_event_the_view_dead_lettered_as_unreadable_stops_no_true_up(catalogue, settings):
    """A stock change whose figures are no numbers (a bad producer) is the view's dead letter;
    the true-up leaves it out, as a rebuild does, and still compares every product."""
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    inventory_true_up()
    catch_up()
    unreadable = [
        {"product": "muskie-casting-rod", "on_hand": "x", "held": 0, "delta": "x", "held_delta": 0},
        # A change with no figures after it, which the view reads of every STOCK event.
        {"product": "tourney-casting-rod", "delta": 3, "held_delta": 0},
    ]
    with transaction.atomic():
        for data in unreadable:
            event_append(
                source="legacy.stock",
                detail_type="State change Notification",
                type="STOCK",
                subtype="PRODUCT",
                status="CHANGED",
                data=data,
            )
    settled()
    consumer_run_all(consumer="inventory")
    assert DeadLetter.objects.filter(consumer="inventory", redriven_at__isnull=True).count() == 2
    # Drift the view must still find, on the bad event's product and on another.
    Product.objects.filter(slug__in=["muskie-casting-rod", "spinning-reel"]).update(stock=F("stock") - 2)

    corrections = inventory_true_up()
    assert {c["product"]: c["delta"] for c in corrections} == {"muskie-casting-rod": -2, "spinning-reel": -2}
    assert inventory_true_up(products=["muskie-casting-rod"]) == []
    catch_up("inventory")
    for slug in ("muskie-casting-rod", "spinning-reel"):
        assert inventory_figures(product=slug)["on_hand"] == Product.objects.get(slug=slug).stock
