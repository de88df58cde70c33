"""Receipts: the storefront's record of an order the legacy API placed (its number, the buyer,
the delivery), written once per reference with its PLACED event and its confirmation email (sent
once it commits), whichever request or sweep gets there first."""

from __future__ import annotations

from dataclasses import asdict, replace

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

import legacy_client
from legacy_client import Outcome
from shop.checkout_events import checkout_placed_append
from shop.checkout_pending import pending_checkout_settle
from shop.confirmations import order_confirmation_on_commit
from shop.delivery import Delivery
from shop.emails import Confirmation
from shop.models import PlacedOrder


def checkout_placed_answer(answer: legacy_client.OrderAnswer) -> bool:
    """Whether the legacy API answered with an order placed, its number and id given."""
    return answer.outcome == Outcome.PLACED and bool(answer.data.get("number")) and answer.data.get("id") is not None


def placed_lines(data: dict) -> list[dict]:
    """The lines of an order as the legacy API answered it, as a basket's are taken out."""
    lines = [line for line in data.get("lines") or [] if isinstance(line, dict)]
    return [{"product": str(line.get("product")), "quantity": int(line.get("quantity") or 0)} for line in lines]


def checkout_found_record(
    *,
    reference: str,
    answer: legacy_client.OrderAnswer,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    fingerprint: str = "",
) -> tuple[PlacedOrder, list[dict]]:
    """The order the legacy API found under `reference` (legacy_client.order_find's PLACED) after
    the try that placed it lost its answer: its receipt recorded for `customer`, with the lines,
    name and email it was placed with and `delivery`'s address, and confirmed by email once, as
    that try would have done. With the lines it ordered."""
    data = answer.data
    earlier = placed_lines(data)
    # The order is the earlier try's, with its name and email; the address is only this one's.
    ordered_by = data.get("customer") or {}
    delivery = replace(
        delivery, name=ordered_by.get("name") or delivery.name, email=ordered_by.get("email") or delivery.email
    )
    order = placed_order_record(
        reference=reference,
        legacy=data,
        customer=customer,
        delivery=delivery,
        processing_ms=int(data.get("processing_ms") or 0),
        lines=earlier,
        fingerprint=fingerprint,
    )
    return order, earlier


def placed_order_record(
    *,
    reference: str,
    legacy: dict,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    processing_ms: int,
    lines: list[dict] = (),
    fingerprint: str = "",
    settle: bool = True,
) -> PlacedOrder:
    """The storefront's receipt, with its PLACED event and the buyer's confirmation email (the
    lines as the legacy API placed them, sent once this commits) in the same transaction; a second
    answer for the same reference finds the first (and logs and emails nothing more). Its lines
    are still to be taken out of the basket (shop.services.basket_take_placed). Its checkout in
    doubt is settled with it, unless not to `settle` (a basket's: settled as its lines are taken)."""
    defaults = {
        "number": str(legacy["number"]),
        "legacy_id": int(legacy["id"]),
        "customer": customer if customer is not None and customer.is_authenticated else None,
        **asdict(delivery),
        "total_cents": int(legacy.get("total_cents") or 0),
        "card_last4": str(legacy.get("card_last4") or "")[-4:],
        "processing_ms": processing_ms,
        # Its email is written with it (below); the release before claimed it here.
        "confirmation_sent_at": timezone.now(),
    }
    if fingerprint:  # a buy-now's receipt recorded for a request that got no answer
        defaults.update(fingerprint=fingerprint, answered=False)
    defaults["lines_taken"] = False
    try:
        with transaction.atomic():
            order, created = PlacedOrder.objects.get_or_create(reference=reference, defaults=defaults)
            if settle:
                pending_checkout_settle(reference=reference)
            if created:
                checkout_placed_append(
                    number=order.number, reference=reference, lines=list(lines), total_cents=order.total_cents
                )
                order_confirmation_on_commit(_confirmation(order, legacy))
    except IntegrityError:  # a double submit recorded it a moment ago
        order = PlacedOrder.objects.get(reference=reference)
    return order


def receipt_recorded_claim(order: PlacedOrder) -> bool:
    """Whether this request is the first to be answered with a buy-now's receipt the sweep
    recorded (its original request's answer was lost): it gets what that answer gave."""
    return PlacedOrder.objects.filter(pk=order.pk, answered=False).update(answered=True) == 1


def _confirmation(order: PlacedOrder, legacy: dict) -> Confirmation:
    """The email of a receipt: its lines' titles and quantities as the legacy API placed them."""
    placed = [line for line in legacy.get("lines") or [] if isinstance(line, dict)]
    return Confirmation(
        number=order.number,
        name=order.name,
        email=order.email,
        lines=[(str(line.get("title") or line.get("product")), int(line.get("quantity") or 0)) for line in placed],
        total_cents=order.total_cents,
        legacy_id=order.legacy_id,
    )
