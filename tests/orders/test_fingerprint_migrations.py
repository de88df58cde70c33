"""The migrations that renew the fingerprints kept before (orders 0008, shop 0021, legacy_api
0005): each row that holds what its fingerprint is made of is recomputed in the form with no more
of the card than its last four digits, so a replay of an order accepted before is still answered
with it (not 422); a refusal for a declined card, which holds no body, keeps its card-wide
fingerprint apart for a week after the refusal, and one older loses it now."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

import legacy_client
from legacy_api import services as legacy_services
from legacy_api.exceptions import ReferenceReused
from legacy_api.models import Order
from legacy_api.references import LineRequest, order_fingerprint, order_replay
from orders import acceptance
from orders.inputs import order_input_parse
from orders.models import HotOrder
from orders.selectors import hot_product_get
from orders.services import IdempotencyKeyReused
from shop.buy_now import receipt_matches
from shop.models import BuyNowRefusal, PendingCheckout, PlacedOrder
from tests.conftest import migrate_to
from tests.orders.conftest import APPROVED_CARD, order_body

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

BEFORE = [
    ("orders", "0007_email_and_legacy_number_indexes"),
    ("shop", "0018_product_price_within_the_order_backends_total"),
    ("legacy_api", "0004_callers_own_holds_and_orders"),
]
AFTER = [
    ("orders", "0008_card_free_fingerprints"),
    ("shop", "0021_card_free_fingerprints_renewed"),
    ("legacy_api", "0005_card_free_fingerprints"),
]
SCHEMA_STEP = [("shop", "0019_card_free_fingerprints")]  # README, Upgrading: before the restarts
SLUG = "muskie-casting-rod"
SAME_LAST_FOUR = "5555555555594242"  # Luhn-valid, approved, ending as APPROVED_CARD does
OTHER_LAST_FOUR = "5555555555554444"
NAME, EMAIL = "Ann Angler", "Ann@Example.com"


def keyed(canonical) -> str:
    body = json.dumps(canonical, separators=(",", ":"), sort_keys=isinstance(canonical, dict)).encode()
    return hmac.new(settings.SECRET_KEY.encode(), body, hashlib.sha256).hexdigest()


def buy_now_form(card: str) -> str:
    """A buy-now body's fingerprint (hot path and monolith): over the whole card before, its last four now."""
    return keyed([SLUG, 1, NAME, EMAIL.lower(), card])


def legacy_form(card: str) -> str:
    return keyed({"customer": [NAME, EMAIL.lower()], "lines": [[SLUG, 1]], "card": card})


def body(card: str = APPROVED_CARD):
    return order_input_parse(json.dumps(order_body(name=NAME, email=EMAIL, card=card)).encode())


def test_rows_kept_before_are_renewed_and_their_replays_still_answered(allocation):
    hot = acceptance.order_accept(
        product=hot_product_get(category="rods", product=SLUG), idempotency_key="k-before", data=body()
    ).order
    lines = [LineRequest(product=SLUG, quantity=1)]
    legacy, _ = legacy_services.order_place(
        reference="ref-before", customer_name=NAME, customer_email=EMAIL, lines=lines, card_number=APPROVED_CARD
    )
    old = migrate_to(BEFORE).loader.project_state(BEFORE).apps
    # As the release before kept them: over the whole card number.
    old.get_model("orders", "HotOrder").objects.update(fingerprint=buy_now_form(APPROVED_CARD))
    old.get_model("legacy_api", "Order").objects.update(fingerprint=legacy_form(APPROVED_CARD))
    receipt = old.get_model("shop", "PlacedOrder").objects.create(
        number=legacy.number,
        legacy_id=legacy.pk,
        reference=legacy_client.reference_for_key("buy-before"),
        email=EMAIL,
        name=NAME,
        total_cents=legacy.total_cents,
        card_last4="",  # a receipt from before the last four digits were kept: the order of record has them
        processing_ms=1,
        fingerprint=buy_now_form(APPROVED_CARD),
    )
    refusal = old.get_model("shop", "BuyNowRefusal")
    refusal.objects.create(reference="declined-lately", fingerprint=buy_now_form("4000000000000002"), detail="No.")
    long_ago = refusal.objects.create(reference="declined-long-ago", fingerprint=buy_now_form("x"), detail="No.")
    refusal.objects.filter(pk=long_ago.pk).update(refused_at=timezone.now() - timedelta(days=8))
    buy_now_try = {"customer": None, "name": NAME, "email": EMAIL, "address_line": "", "city": "", "region": ""}
    buy_now_try |= {"postcode": "", "country": "", "lines": [{"product": SLUG, "quantity": 1}], "card_last4": "4242"}
    checkout_try = {**buy_now_try, "fingerprint": "", "basket": 7}
    old.get_model("shop", "PendingCheckout").objects.create(
        reference="in-doubt",
        tries=[{**buy_now_try, "fingerprint": buy_now_form(APPROVED_CARD)}, checkout_try],
        look_after=timezone.now(),
    )

    migrate_to(AFTER)

    # Every recomputed row holds its new form, made of its own fields.
    assert HotOrder.objects.get().fingerprint == buy_now_form("4242")
    assert Order.objects.get().fingerprint == legacy_form("4242")
    assert PlacedOrder.objects.get(pk=receipt.pk).fingerprint == buy_now_form("4242")
    assert PendingCheckout.objects.get().tries == [{**buy_now_try, "fingerprint": buy_now_form("4242")}, checkout_try]
    lately, dropped = BuyNowRefusal.objects.get(reference="declined-lately"), BuyNowRefusal.objects.get(pk=long_ago.pk)
    assert (lately.fingerprint, lately.fingerprint_before) == ("", buy_now_form("4000000000000002"))
    assert (dropped.fingerprint, dropped.fingerprint_before) == ("", "")

    # A replay of an order accepted before is still its order, with its card or another ending alike.
    product = hot_product_get(category="rods", product=SLUG)
    for card in (APPROVED_CARD, SAME_LAST_FOUR):
        again = acceptance.order_accept(product=product, idempotency_key="k-before", data=body(card))
        assert again.replayed and again.order.pk == hot.pk
    with pytest.raises(IdempotencyKeyReused):
        acceptance.order_accept(product=product, idempotency_key="k-before", data=body(OTHER_LAST_FOUR))
    placed = PlacedOrder.objects.get(pk=receipt.pk)
    assert receipt_matches(placed, body(), product_slug=SLUG)
    assert not receipt_matches(placed, body(OTHER_LAST_FOUR), product_slug=SLUG)

    def legacy_replay(card: str):
        fingerprint = order_fingerprint(customer_name=NAME, customer_email=EMAIL, lines=lines, card_number=card)
        return order_replay(reference="ref-before", fingerprint=fingerprint, caller=legacy.caller)

    assert legacy_replay(APPROVED_CARD).pk == legacy_replay(SAME_LAST_FOUR).pk == legacy.pk
    with pytest.raises(ReferenceReused):
        legacy_replay(OTHER_LAST_FOUR)
    assert HotOrder.objects.get().fingerprint == buy_now_form("4242")  # nothing renewed on the way back


def test_the_schema_step_keeps_every_fingerprint_the_release_before_compares(allocation):
    """`migrate shop 0019` runs while the release before still serves: its processes answer a
    replay only when the stored fingerprint is the card-wide one they compute, so no row is
    renewed until the processes have been restarted and `migrate` is run again."""
    product = hot_product_get(category="rods", product=SLUG)
    hot = acceptance.order_accept(product=product, idempotency_key="k-rolling", data=body()).order
    lines = [LineRequest(product=SLUG, quantity=1)]
    legacy, _ = legacy_services.order_place(
        reference="ref-rolling", customer_name=NAME, customer_email=EMAIL, lines=lines, card_number=APPROVED_CARD
    )
    old = migrate_to(BEFORE).loader.project_state(BEFORE).apps
    old.get_model("orders", "HotOrder").objects.update(fingerprint=buy_now_form(APPROVED_CARD))
    old.get_model("legacy_api", "Order").objects.update(fingerprint=legacy_form(APPROVED_CARD))
    receipt = old.get_model("shop", "PlacedOrder").objects.create(
        number=legacy.number,
        legacy_id=legacy.pk,
        reference=legacy_client.reference_for_key("buy-rolling"),
        email=EMAIL,
        name=NAME,
        total_cents=legacy.total_cents,
        card_last4="4242",
        processing_ms=1,
        fingerprint=buy_now_form(APPROVED_CARD),
    )
    declined = buy_now_form("4000000000000002")
    old.get_model("shop", "BuyNowRefusal").objects.create(reference="declined", fingerprint=declined, detail="No.")

    migrate_to(SCHEMA_STEP)

    assert HotOrder.objects.get().fingerprint == buy_now_form(APPROVED_CARD)
    assert Order.objects.get().fingerprint == legacy_form(APPROVED_CARD)
    assert PlacedOrder.objects.get(pk=receipt.pk).fingerprint == buy_now_form(APPROVED_CARD)
    refusal = BuyNowRefusal.objects.get()
    assert (refusal.fingerprint, refusal.fingerprint_before) == (declined, "")
    # The release rolled out meanwhile answers the same replay, and renews what it matched.
    again = acceptance.order_accept(product=product, idempotency_key="k-rolling", data=body())
    assert again.replayed and again.order.pk == hot.pk
    assert HotOrder.objects.get().fingerprint == buy_now_form("4242")
