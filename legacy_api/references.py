"""An order's reference and its body: the body's fingerprint, and the answers to a reference
used before, placing nothing: the order it placed when the body is the same (order_replay), a
caller's order found by its reference (order_lookup), and the fence a lookup puts round a
request that outlived its lease (pending_fence). Placing an order is legacy_api.services'."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from legacy_api.exceptions import InProgress, ReferenceReused
from legacy_api.models import Order, OrderReader
from legacy_api.payments import card_number_normalise, payment_void
from legacy_api.selectors import order_get_by_reference, order_placed_get


@dataclass(frozen=True)
class LineRequest:
    product: str
    quantity: int
    # The price per unit the buyer was told, in cents (the hot path's at acceptance, the
    # checkout's as shown): charged as it is. None: the product's price when the order is placed.
    unit_price_cents: int | None = None

    def price_cents(self, product) -> int:
        return product.price_cents if self.unit_price_cents is None else self.unit_price_cents


@dataclass(frozen=True)
class BodyFingerprint:
    """A request's fingerprint (`value`, the one stored), and `before`, the card-wide form of the
    releases before, computed from the request only to recognise a row that still holds it."""

    value: str
    before: str

    def matches(self, stored: str) -> bool:
        return hmac.compare_digest(stored, self.value) or (bool(stored) and hmac.compare_digest(stored, self.before))


def _keyed(*, customer_name: str, customer_email: str, lines: list, card: str) -> str:
    canonical = json.dumps(
        {"customer": [customer_name.strip(), customer_email.strip().lower()], "lines": sorted(lines), "card": card},
        separators=(",", ":"),
        sort_keys=True,
    )
    return hmac.new(settings.SECRET_KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def order_fingerprint_of(*, customer_name: str, customer_email: str, lines: list, card_last4: str) -> str:
    """The body's identity: customer, lines ([product, quantity] each) and the card's last four
    digits, but not the hold, so the same buyer's order sent by the storefront and by the hot
    path's worker is one order. No more of the card: with the database and SECRET_KEY, a hash over
    the whole number gives it back in seconds (its first six and last four digits known, Luhn's
    check: some 10^5 numbers to try). legacy_api migration 0005 renewed the orders kept before."""
    lines = [list(line) for line in lines]
    return _keyed(customer_name=customer_name, customer_email=customer_email, lines=lines, card=card_last4[-4:])


def order_fingerprint(
    *, customer_name: str, customer_email: str, lines: Sequence[LineRequest], card_number: str
) -> BodyFingerprint:
    """A request's fingerprint (order_fingerprint_of), with the form the releases before stored."""
    card = card_number_normalise(card_number)
    asked = [[line.product, line.quantity] for line in lines]
    customer = {"customer_name": customer_name, "customer_email": customer_email, "lines": asked}
    return BodyFingerprint(
        value=order_fingerprint_of(**customer, card_last4=card[-4:]), before=_keyed(**customer, card=card)
    )


def order_replay(*, reference: str, fingerprint: BodyFingerprint, caller: str) -> Order | None:
    """The order placed under `reference` when the body is the same; ReferenceReused when not,
    InProgress while a request still works on it, None when there is none (or its lease ended)."""
    existing = order_get_by_reference(reference=reference)
    if existing is None:
        return None
    body_check(existing.fingerprint, existing.caller, reference=reference, fingerprint=fingerprint, caller=caller)
    if existing.status == Order.Status.PENDING:
        if Order.objects.filter(pk=existing.pk, lease_until__lt=Now()).exists():
            return None  # its worker died: order_place takes it over
        raise InProgress(reference=reference)
    return order_shared(existing, caller=caller)


def order_lookup(*, reference: str, caller: str) -> Order | None:
    """The order placed under `reference` that `caller` may read, placing nothing: a caller
    that gives up on an order asks first whether it was placed after all. Another caller's
    order is None, as no order at all (nor does the lookup make the caller its reader: only its
    very body does). Raises InProgress while a request of `caller`'s still works on the
    reference: it may yet place it."""
    existing = order_get_by_reference(reference=reference)
    if existing is None:
        return None
    if existing.status == Order.Status.PENDING:
        if existing.caller != caller:
            return None  # another caller's: none of this caller's
        pending_fence(existing.pk, reference=reference)
        return None
    return order_placed_get(order_id=existing.pk, caller=caller)


def pending_fence(pk: int, *, reference: str) -> None:
    """Drops a pending order whose lease has ended (its request stalled or died), and voids what
    it authorised, before a lookup answers "no order": a request merely stalled can no longer
    place it, its last write finding no row. The row is locked first, so that request's last
    write waits for the drop, or the drop sees it placed. InProgress when the lease still runs,
    or the order was placed or taken over meanwhile."""
    with transaction.atomic():
        stale = (
            Order.objects.select_for_update().filter(pk=pk, status=Order.Status.PENDING, lease_until__lt=Now()).first()
        )
        if stale is None:
            raise InProgress(reference=reference)
        stale.delete()
        payment_void(key=reference)


def body_check(
    placed_fingerprint: str, placed_caller: str, *, reference: str, fingerprint: BodyFingerprint, caller: str
) -> None:
    """ReferenceReused unless the body is the one that placed the order. An order kept from before
    fingerprints were is taken as the same body only by the caller that placed it: another could
    not prove it is. One still holding the card-wide form (written by a process of the release
    before while this one was rolled out) is renewed once its body is recognised."""
    same = fingerprint.matches(placed_fingerprint) if placed_fingerprint else placed_caller == caller
    if not same:
        raise ReferenceReused(reference=reference)
    if placed_fingerprint and placed_fingerprint != fingerprint.value:
        Order.objects.filter(reference=reference, fingerprint=placed_fingerprint).update(fingerprint=fingerprint.value)


def order_shared(order: Order, *, caller: str) -> Order:
    """The order for `caller`, which sent its very body: one it did not place, it may read from now on."""
    if order.caller != caller:
        OrderReader.objects.get_or_create(order=order, caller=caller)
    return order
