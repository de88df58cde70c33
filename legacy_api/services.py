"""Placing orders of record: the card authorised once, stock taken without overselling, all or nothing.

A pending row keyed by the reference is committed before the card is authorised, so the
unique constraint on the reference is the lock: a concurrent duplicate finds it and is told to
retry (InProgress) instead of authorising a second time. The row carries a lease on the
database's clock; when the request working on it dies, a retry takes it over after the lease,
and the authoriser (keyed by the reference) hands it the authorisation already given. The card
is authorised with the row locked, and only while it is still the request's: a reference no
row holds is never authorised.

An order is its caller's. References are one namespace for every caller, as one buyer's
Idempotency-Key is one order whether the storefront or the hot path's worker sends it: a caller
that sends another caller's reference with the very body that placed the order (the whole card
number included) gets that order and may read it from then on (OrderReader); with any other
body, the reference is refused as reused, and nothing of the order is shown. Called in-process
rather than over HTTP, order_place acts for the hot path, the caller that draws on the sales' holds.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from argon2.low_level import Type, hash_secret_raw
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from legacy_api.events import StockReason, order_line, order_placed_append, stock_moved_append
from legacy_api.exceptions import (
    CardDeclined,
    Expired,
    InProgress,
    InvalidOrder,
    OrderError,
    OutOfStock,
    ReferenceReused,
)
from legacy_api.holds import hold_draw
from legacy_api.models import Hold, Order, OrderLine
from legacy_api.payments import Authorisation, card_number_normalise, payment_authorise, payment_void
from legacy_api.references import (
    BodyFingerprint,
    LineRequest,
    body_check,
    order_fingerprint,
    order_replay,
    order_shared,
)
from legacy_api.selectors import hold_get, hold_lock, order_get_by_reference, products_lock
from legacy_api.tokens import HOTPATH
from shop.models import Product

# The most an order may come to: what its callers' receipts (32-bit totals) can record.
MAX_ORDER_TOTAL_CENTS = 2_147_483_647

__all__ = ["CardDeclined", "InProgress", "InvalidOrder", "LineRequest", "OutOfStock", "ReferenceReused", "order_place"]


def order_place(
    *,
    reference: str,
    customer_name: str,
    customer_email: str,
    lines: Sequence[LineRequest],
    card_number: str,
    hold: str | None = None,
    caller: str = HOTPATH,
    place_before: datetime | None = None,
) -> tuple[Order, bool]:
    """Places the order for `caller` (drawing on its hold named `hold`, if any) and returns it with
    True, or the order already placed under `reference` with False. Raises InvalidOrder,
    CardDeclined, OutOfStock, ReferenceReused, InProgress or Expired (a new order asked for after
    `place_before`), having placed nothing and leaving no live authorisation."""
    started = time.monotonic()
    fingerprint = order_fingerprint(
        customer_name=customer_name, customer_email=customer_email, lines=lines, card_number=card_number
    )
    products = _products_on_sale(lines)
    held = _hold_named(hold, lines, caller=caller)
    # The price each line was sold at (the caller's, or the product's now): authorised, and then
    # charged, whatever the product's price becomes meanwhile.
    prices = {line.product: line.price_cents(products[line.product]) for line in lines}
    amount_cents = sum(prices[line.product] * line.quantity for line in lines)
    if amount_cents > MAX_ORDER_TOTAL_CENTS:
        raise InvalidOrder({"lines": [f"The order's total is more than {MAX_ORDER_TOTAL_CENTS} cents."]})
    owner = secrets.token_hex(8)
    pending = _order_claim(
        reference=reference,
        fingerprint=fingerprint,
        owner=owner,
        caller=caller,
        customer_name=customer_name,
        customer_email=customer_email,
        card_last4=card_number_normalise(card_number)[-4:],
        amount_cents=amount_cents,
        place_before=place_before,
    )
    if isinstance(pending, Order) and pending.status == Order.Status.PLACED:
        return pending, False
    authorisation = _authorise_while_claimed(
        pending, owner, reference=reference, card_number=card_number, amount_cents=amount_cents
    )
    if authorisation is None:
        return _lease_lost(reference=reference, fingerprint=fingerprint, caller=caller, code=None)
    if not authorisation.approved:
        _claim_drop(pending, owner)
        raise CardDeclined(reason=authorisation.decline_reason)
    # The CPU is spent before the transaction: no row lock is held while it burns.
    _order_work_cost(reference)
    try:
        with transaction.atomic():
            # The order row first (a takeover waits on it), then the hold, then the products.
            finished = Order.objects.filter(pk=pending, status=Order.Status.PENDING, lease_owner=owner).update(
                status=Order.Status.PLACED,
                number=Order.number_for(pending),
                hold=held,
                authorisation_code=authorisation.code,
                lease_owner="",
                lease_until=None,
                processing_ms=int((time.monotonic() - started) * 1000),
            )
            if finished != 1:
                raise _LeaseLost
            number = Order.number_for(pending)
            locked = _stock_take(lines, [products[line.product].pk for line in lines], held, number=number)
            Order.objects.filter(pk=pending).update(total_cents=amount_cents)
            OrderLine.objects.bulk_create(
                OrderLine(
                    order_id=pending,
                    product=locked[line.product],
                    product_slug=line.product,
                    title=locked[line.product].title,
                    quantity=line.quantity,
                    unit_price_cents=prices[line.product],
                )
                for line in lines
            )
            order_placed_append(
                number=number,
                reference=reference,
                lines=[
                    order_line(
                        product=locked[line.product], quantity=line.quantity, unit_price_cents=prices[line.product]
                    )
                    for line in lines
                ],
                total_cents=amount_cents,
                hold=held.reference if held is not None else None,
            )
    except _LeaseLost:
        return _lease_lost(reference=reference, fingerprint=fingerprint, caller=caller, code=authorisation.code)
    except OrderError:
        _claim_release(pending, owner, reference=reference)
        raise
    return order_get_by_reference(reference=reference), True


class _LeaseLost(Exception):
    pass


def _authorise_while_claimed(
    pk: int, owner: str, *, reference: str, card_number: str, amount_cents: int
) -> Authorisation | None:
    """Authorises the card while this request's pending row is locked, or None (authorising
    nothing) when the row is no longer this request's: a request that stalled before authorising
    past its lease may have had its row dropped by a lookup (which voided what was live then) or
    taken over by a retry. A lookup's drop waits for the authorisation and voids it with the
    row; a takeover waits, and is handed it. Nothing is authorised for a reference no row holds."""
    with transaction.atomic():
        if not Order.objects.select_for_update().filter(pk=pk, status=Order.Status.PENDING, lease_owner=owner).exists():
            return None
        return payment_authorise(key=reference, card_number=card_number, amount_cents=amount_cents)


def _lease_lost(*, reference: str, fingerprint: BodyFingerprint, caller: str, code: str | None) -> tuple[Order, bool]:
    """The answer of a request whose row was taken from it once its lease ended: the order, when
    a retry finished it; otherwise InProgress, having voided what this request authorised (`code`)."""
    existing = order_replay(reference=reference, fingerprint=fingerprint, caller=caller)
    if existing is not None:
        return existing, False
    # Nobody has placed the order: a lookup dropped this request's row once its lease ended
    # (order_lookup), or a retry took it over and has not finished.
    if code is not None:
        _void_unless_claimed(reference, code=code)
    raise InProgress(reference=reference)


def _order_claim(
    *,
    reference: str,
    fingerprint: BodyFingerprint,
    owner: str,
    caller: str,
    customer_name: str,
    customer_email: str,
    card_last4: str,
    amount_cents: int,
    place_before: datetime | None = None,
) -> int | Order:
    """Commits a pending row for `reference` owned by `owner` and returns its id, takes over one
    whose lease has ended, or returns the order already placed. Raises ReferenceReused or
    InProgress; Expired when a row would be claimed after `place_before`. Its caller has given
    up on the answer then, and may already have been told by a lookup that nothing was placed:
    a request delayed on its way (a proxy's queue, a busy server's backlog) must not place an
    order nobody records. The time is checked just before the claim commits."""
    fields = {
        "fingerprint": fingerprint.value,
        "caller": caller,
        "customer_name": customer_name,
        "customer_email": customer_email,
        "card_last4": card_last4,
        "total_cents": amount_cents,
        "lease_owner": owner,
    }
    for _ in range(3):
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    reference=reference,
                    status=Order.Status.PENDING,
                    authorisation_code="",
                    processing_ms=0,
                    lease_until=Now() + timedelta(seconds=settings.LEGACY_ORDER_LEASE_SECONDS),
                    **fields,
                )
                _in_time(place_before, reference=reference)
            return order.pk
        except IntegrityError:
            pass
        existing = Order.objects.filter(reference=reference).values("pk", "status", "fingerprint", "caller").first()
        if existing is None:
            continue  # the other request gave up and dropped its row: try again
        body_check(
            existing["fingerprint"], existing["caller"], reference=reference, fingerprint=fingerprint, caller=caller
        )
        if existing["status"] == Order.Status.PLACED:
            return order_shared(order_get_by_reference(reference=reference), caller=caller)
        _in_time(place_before, reference=reference)
        taken = Order.objects.filter(pk=existing["pk"], status=Order.Status.PENDING, lease_until__lt=Now()).update(
            lease_until=Now() + timedelta(seconds=settings.LEGACY_ORDER_LEASE_SECONDS), **fields
        )
        if taken == 1:
            return existing["pk"]
        raise InProgress(reference=reference)
    raise InProgress(reference=reference)


def _in_time(place_before: datetime | None, *, reference: str) -> None:
    if place_before is not None and timezone.now() >= place_before:
        raise Expired(reference=reference)


def _claim_drop(pk: int, owner: str) -> None:
    """Deletes this request's pending row, so the reference may be placed later (another card,
    stock back); a row taken over by another request is left to it."""
    Order.objects.filter(pk=pk, status=Order.Status.PENDING, lease_owner=owner).delete()


def _void_unless_claimed(reference: str, *, code: str) -> None:
    """Voids what a request whose row was taken from it authorised, unless a retry holds the
    reference now: a retry that took the row over was given that authorisation as its own, and
    places the order with it or drops both (_claim_release, a lookup's fence); one that claimed
    the reference afresh was authorised anew, and this code is not its."""
    with transaction.atomic():
        if not Order.objects.select_for_update().filter(reference=reference).exists():
            payment_void(key=reference, code=code)


def _claim_release(pk: int, owner: str, *, reference: str) -> None:
    """Drops this request's pending row and voids what it authorised, in one transaction: a
    retry that took the row over (its lease ended) was given that authorisation as its own and
    keeps both; one that claims the reference afresh waits for the drop, and is authorised anew."""
    with transaction.atomic():
        if Order.objects.filter(pk=pk, status=Order.Status.PENDING, lease_owner=owner).delete()[0]:
            payment_void(key=reference)


def _hold_named(reference: str | None, lines: Sequence[LineRequest], *, caller: str) -> Hold | None:
    """`caller`'s hold named by the order; another caller's is unknown to it, as no hold at all."""
    if not reference:
        return None
    held = hold_get(reference=reference, caller=caller)
    if held is None:
        raise InvalidOrder({"hold": [f"Unknown hold {reference!r}."]})
    if not any(line.product == held.product.slug for line in lines):
        raise InvalidOrder({"hold": [f"The hold {reference!r} is for {held.product.slug}, which no line orders."]})
    return held


def _products_on_sale(lines: Sequence[LineRequest]) -> dict[str, Product]:
    """The products named by the lines, by slug; InvalidOrder names every line that cannot be sold."""
    products = {p.slug: p for p in Product.objects.filter(slug__in=[line.product for line in lines])}
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, line in enumerate(lines):
        product = products.get(line.product)
        if line.product in seen:
            errors[f"lines.{index}.product"] = ["This product is already in another line; combine the quantities."]
        elif product is None or product.deleted_at is not None:
            errors[f"lines.{index}.product"] = [f"Unknown product {line.product!r}."]
        elif not product.is_active:
            errors[f"lines.{index}.product"] = [f"{product.title} is not on sale."]
        seen.add(line.product)
    if errors:
        raise InvalidOrder(errors)
    return products


def _stock_take(
    lines: Sequence[LineRequest], product_pks: list[int], held: Hold | None, *, number: str
) -> dict[str, Product]:
    """Takes every line's quantity inside the caller's transaction, or raises: the hold's product
    from the hold only, every other one from available stock only (never from held units).
    Each line's change is logged with the figures after it, known from the locked row.

    The decrements are conditional as well as locked, so stock can never go below what is held
    even where the database has no row locks (SQLite serialises writers instead).
    """
    if held is not None:
        # The hold before the products, as hold_resize and hold_release lock them: no deadlock.
        hold_lock(reference=held.reference, caller=held.caller)
    locked = products_lock(pks=product_pks)
    for index, line in enumerate(lines):
        product = locked[line.product]
        if not product.is_on_sale:
            raise InvalidOrder({f"lines.{index}.product": [f"{product.title} is not on sale."]})
        if held is not None and held.product_id == product.pk:
            hold_draw(hold=held, product=product, units=line.quantity, line=index)
            held_delta, refs = -line.quantity, {"hold": held.reference}
        else:
            taken = Product.objects.filter(pk=product.pk, stock__gte=F("held") + line.quantity).update(
                stock=F("stock") - line.quantity
            )
            if taken != 1:
                raise OutOfStock(product=product.slug, line=index, available=product.available)
            held_delta, refs = 0, {}
        stock_moved_append(
            product=product,
            stock=product.stock - line.quantity,
            held=product.held + held_delta,
            delta=-line.quantity,
            held_delta=held_delta,
            reason=StockReason.ORDER,
            order=number,
            **refs,
        )
    return locked


def _order_work_cost(reference: str) -> None:
    """The CPU and memory one order costs the backend (the workshop's argon2 hash): it is what
    makes the backend's capacity small. Cheap under test settings."""
    hash_secret_raw(
        secret=reference.encode(),
        salt=os.urandom(16),
        time_cost=settings.LEGACY_ARGON2_TIME_COST,
        memory_cost=settings.LEGACY_ARGON2_MEMORY_KIB,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
    )
