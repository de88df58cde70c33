"""The storefront's checkouts in the unified log (shop.checkout_events): one PLACED event written
with the receipt, DECLINED and FAILED for the rest, each fitting the log's envelope and never
carrying the card."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from events.models import Event
from shop.checkout_events import SOURCE
from shop.models import PlacedOrder
from tests.shop.test_checkout import (
    DECLINED,
    _earlier_try_pending,
    _placed_but_answer_lost,
    checkout_form,
    fill_basket,
)

pytestmark = pytest.mark.django_db(transaction=True)

CARD_PIECES = re.compile(r"(?<![0-9a-fA-F])\d*(?:4242|0002)(?![0-9a-fA-F])")
ENVELOPE_SCHEMA = json.loads((Path(__file__).parents[2] / "events/schema/envelope.schema.json").read_text())


def storefront_events() -> list[Event]:
    events = list(Event.objects.filter(source=SOURCE).order_by("position"))
    for event in events:
        jsonschema.validate(event.envelope(), ENVELOPE_SCHEMA)
        text = json.dumps(event.envelope())
        # Neither card nor its last four digits; ids and trace ids are hex and may hold the
        # same digits by chance, so a piece counts only where it stands on its own.
        assert not CARD_PIECES.search(text), text
    return events


def test_a_placed_checkout_logs_one_placed_event_with_its_number(client, legacy_api, rod):
    fill_basket(client, rod, 2)
    assert client.post("/checkout/", checkout_form()).status_code == 302
    order = PlacedOrder.objects.get()

    (event,) = storefront_events()
    assert (event.type, event.subtype, event.status, event.resources) == ("CHECKOUT", "ORDER", "PLACED", [order.number])
    assert event.data["number"] == order.number and event.data["total_cents"] == order.total_cents
    assert event.data["lines"] == [{"product": rod.slug, "quantity": 2}]


def test_a_declined_card_logs_declined_and_no_receipt(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    assert client.post("/checkout/", checkout_form(card_number=DECLINED)).status_code == 402

    (event,) = storefront_events()
    assert event.status == "DECLINED" and event.data["reason"] == "declined" and not event.data["retryable"]
    assert not PlacedOrder.objects.exists()


def test_an_order_service_out_of_reach_logs_a_retryable_failure(client, settings, closed_port_url, rod):
    fill_basket(client, rod, 1)
    settings.LEGACY_API_URL = closed_port_url
    assert client.post("/checkout/", checkout_form()).status_code == 503

    (event,) = storefront_events()
    assert (event.status, event.data["reason"], event.data["retryable"]) == ("FAILED", "not_sent", True)


def test_a_retry_that_finds_its_earlier_try_placed_logs_that_order_once_and_no_refusal(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    _placed_but_answer_lost(client, rod)

    assert client.post("/checkout/", checkout_form(card_number="5555555555554444")).status_code == 302

    (event,) = storefront_events()
    assert (event.status, event.resources) == ("PLACED", [PlacedOrder.objects.get().number])


def test_a_retry_whose_earlier_try_cannot_be_told_yet_logs_a_retryable_failure(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    _earlier_try_pending(client, lease_seconds=60)

    assert client.post("/checkout/", checkout_form()).status_code == 503

    (event,) = storefront_events()
    assert (event.status, event.data["reason"], event.data["retryable"]) == ("FAILED", "in_progress", True)
