"""The buyer's confirmation email, sent once when an order is complete, whichever side placed
it: the monolith when it places an order, the hot path's worker when the legacy API has it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from shop.models import PlacedOrder
from shop.order_links import EMAIL_LINK_VALIDITY, order_link_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Confirmation:
    number: str
    name: str
    email: str
    lines: list[tuple[str, int]]  # (title, quantity)
    total_cents: int


def order_link(*, number: str, email: str) -> str:
    """Where the email sends the buyer: the order itself, by a signed link that works in any
    browser for 30 days (shop.order_links) and grants that browser the order, as a lookup does."""
    return settings.SHOP_BASE_URL + order_link_path(number=number, email=email, valid_for=EMAIL_LINK_VALIDITY)


def order_confirmation_send(confirmation: Confirmation) -> None:
    """Sends the email now. Callers make sure it is sent once (a claimed row, a state change)."""
    context = {
        "c": confirmation,
        "total": f"${confirmation.total_cents // 100:,}.{confirmation.total_cents % 100:02d}",
        "link": order_link(number=confirmation.number, email=confirmation.email),
    }
    try:
        send_mail(
            subject=f"Your order {confirmation.number} is confirmed",
            message=render_to_string("shop/emails/order_confirmation.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[confirmation.email],
        )
    except Exception:  # the order stands; a mail outage must not undo it
        logger.exception("could not email the confirmation of order %s", confirmation.number)


def order_confirmation_on_commit(confirmation: Confirmation) -> None:
    transaction.on_commit(lambda: order_confirmation_send(confirmation))


def placed_order_confirm(*, order: PlacedOrder, lines: list[tuple[str, int]]) -> bool:
    """Emails the buyer of a monolith order once: the request that claims the row sends it;
    a double submit or a replay finds it claimed. False when it was already sent."""
    claimed = PlacedOrder.objects.filter(pk=order.pk, confirmation_sent_at__isnull=True).update(
        confirmation_sent_at=timezone.now()
    )
    if not claimed:
        return False
    order_confirmation_on_commit(
        Confirmation(
            number=order.number, name=order.name, email=order.email, lines=lines, total_cents=order.total_cents
        )
    )
    return True
