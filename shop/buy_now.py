"""The monolith's buy-now: one product ordered with the legacy API while the buyer waits, one
order per Idempotency-Key, and the first answer to a key for its first body only."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser

import legacy_client
from shop.checkout_errors import (
    CheckoutDeclined,
    CheckoutInProgress,
    CheckoutOutOfStock,
    CheckoutReferenceReused,
    CheckoutUnavailable,
)
from shop.checkouts import checkout_buy_now
from shop.delivery import Delivery
from shop.fingerprints import fingerprint_renew
from shop.models import BuyNowRefusal, PlacedOrder, Product
from shop.order_input import OrderInput
from shop.receipts import receipt_recorded_claim


class KeyReused(Exception):
    """The key placed an order for another body: the caller must use a fresh key."""


@dataclass(frozen=True)
class BuyNowPlaced:
    order: PlacedOrder
    # True only for the request that placed it: a replay's session gets no access from it.
    original: bool


def receipt_matches(order: PlacedOrder, data: OrderInput, *, product_slug: str) -> bool:
    """Whether a receipt's order was placed for this body. A receipt with no fingerprint yet
    (its request between the receipt's commit and its stamp, or killed there; or recorded
    before fingerprints were kept) is claimed by the first body to ask; one still in the release
    before's form (shop.fingerprints) is renewed once its body is recognised."""
    fingerprint = data.fingerprint(product_slug=product_slug)
    if not order.fingerprint:
        PlacedOrder.objects.filter(pk=order.pk, fingerprint="").update(fingerprint=fingerprint)
        order.refresh_from_db(fields=["fingerprint"])
    if not data.fingerprint_matches(order.fingerprint, product_slug=product_slug):
        return False
    fingerprint_renew(PlacedOrder.objects.filter(pk=order.pk), stored=order.fingerprint, fingerprint=fingerprint)
    order.fingerprint = fingerprint
    return True


def refusal_matches(refused: BuyNowRefusal, data: OrderInput, *, product_slug: str) -> bool:
    """Whether a declined key's refusal was for this body. One kept from the release before
    holds its card-wide fingerprint apart (`fingerprint_before`), matched until the hourly prune
    drops it (shop.housekeeping) and renewed once recognised; one whose fingerprint was dropped
    holds no body to tell another from: it is the key's answer for every body."""
    if not (refused.fingerprint or refused.fingerprint_before):
        return True
    fingerprint = data.fingerprint(product_slug=product_slug)
    stored = refused.fingerprint or refused.fingerprint_before
    if not data.fingerprint_matches(stored, product_slug=product_slug):
        return False
    if stored != fingerprint:
        BuyNowRefusal.objects.filter(pk=refused.pk).update(fingerprint=fingerprint, fingerprint_before="")
    return True


def _replay(order: PlacedOrder, data: OrderInput, *, product_slug: str) -> BuyNowPlaced:
    if not receipt_matches(order, data, product_slug=product_slug):
        raise KeyReused("This Idempotency-Key was used for another order.")
    # A receipt the sweep recorded after the original's answer was lost: the first retry of its
    # body is answered as the original was to be (a receipt a request recorded was its answer).
    return BuyNowPlaced(order=order, original=receipt_recorded_claim(order))


def _sold_out_message(product: Product, quantity: int) -> str:
    left = Product.objects.filter(pk=product.pk).first()
    available = left.available if left is not None and left.is_on_sale else 0
    if 0 < available < quantity:
        return f"Sorry, only {available} {product.title} left: order {available} or fewer. No order was placed."
    return f"Sorry, {product.title} is sold out. No order was placed."


def buy_now_place(
    *,
    product: Product,
    idempotency_key: str,
    data: OrderInput,
    customer: AbstractBaseUser | None,
    card_sent: Callable[[], AbstractContextManager] | None = None,
) -> BuyNowPlaced:
    """Places the order, or answers as the key's first request did. Raises KeyReused, or a
    CheckoutError saying why the order was not placed (declined, no stock, service busy).
    `card_sent` is entered around the call that sends the card, and only then (a replay sends
    none): the card-testing throttle's (shop.decline_throttle); a decline from the legacy API
    calls `declined()` on what it gives."""
    reference = legacy_client.reference_for_key(idempotency_key)
    fingerprint = data.fingerprint(product_slug=product.slug)
    existing = PlacedOrder.objects.filter(reference=reference).first()
    if existing is not None:
        return _replay(existing, data, product_slug=product.slug)
    refused = BuyNowRefusal.objects.filter(reference=reference).first()
    if refused is not None:
        if not refusal_matches(refused, data, product_slug=product.slug):
            raise KeyReused("This Idempotency-Key was used for another order.")
        replay = CheckoutDeclined(refused.detail)
        replay.replayed = True
        raise replay
    sending = card_sent() if card_sent is not None else nullcontext()
    try:
        with sending as attempt:
            try:
                order = checkout_buy_now(
                    product=product,
                    quantity=data.quantity,
                    customer=customer,
                    delivery=Delivery(
                        name=data.name, email=data.email, address_line="", city="", postcode="", country=""
                    ),
                    card_number=data.card_number,
                    reference=reference,
                    fingerprint=fingerprint,
                )
            except CheckoutDeclined:
                if attempt is not None:
                    attempt.declined()
                raise
    except CheckoutDeclined as exc:
        BuyNowRefusal.objects.get_or_create(
            reference=reference, defaults={"fingerprint": fingerprint, "detail": exc.message[:200]}
        )
        raise
    except CheckoutOutOfStock:
        # The checkout's words speak of a basket; a buy-now has none.
        raise CheckoutOutOfStock(_sold_out_message(product, data.quantity)) from None
    except CheckoutReferenceReused:
        # Another body under this key reached the legacy API first (sent at the same moment,
        # or by the hot path before its route was switched off).
        raise KeyReused("This Idempotency-Key was used for another order.") from None
    except CheckoutInProgress as exc:
        # Another request with this key and body (sent at the same moment) is placing it now.
        raise CheckoutUnavailable(
            "Another request with this Idempotency-Key is placing this order right now. Ask again with the "
            "same key in a moment for its answer: it is placed once."
        ) from exc
    except CheckoutUnavailable as exc:
        raise CheckoutUnavailable(
            "Our order service could not place your order just now. Please try again with the same "
            "Idempotency-Key: you will not be charged twice."
        ) from exc
    # Two requests with one key can both reach the legacy API (which places one order): the
    # one that stamps its fingerprint on the receipt placed it; the other is a replay.
    claimed = PlacedOrder.objects.filter(pk=order.pk, fingerprint="").update(fingerprint=fingerprint)
    if not claimed:
        order.refresh_from_db(fields=["fingerprint"])
        return _replay(order, data, product_slug=product.slug)
    order.fingerprint = fingerprint
    return BuyNowPlaced(order=order, original=True)
