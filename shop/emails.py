"""The buyer's email once an order ends, whichever side placed it: confirmed, or (a hot path
order whose 202 the legacy API then refused) not placed, and why. What it says and how it is
sent; when it is sent, and again, is shop.confirmations'."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.template.loader import render_to_string

from shop.order_links import EMAIL_LINK_VALIDITY, order_link_path

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"


# What an email tells a buyer of their order: placed, or (after its 202) not placed after all.
CONFIRMED = "confirmed"
NOT_PLACED = "not_placed"


@dataclass(frozen=True)
class Confirmation:
    number: str
    name: str
    email: str
    lines: list[tuple[str, int]]  # (title, quantity)
    total_cents: int
    kind: str = CONFIRMED
    # Why it was not placed, as the order's status says it (NOT_PLACED only).
    reason: str = ""
    # The legacy API's order it confirms (CONFIRMED only): confirmed once, whichever origin's
    # record of it is written first.
    legacy_id: int | None = None


def order_link(*, number: str, email: str) -> str:
    """Where the email sends the buyer: the order itself, by a signed link that works in any
    browser for 30 days (shop.order_links) and grants that browser the order, as a lookup does."""
    return settings.SHOP_BASE_URL + order_link_path(number=number, email=email, valid_for=EMAIL_LINK_VALIDITY)


def order_confirmation_send(confirmation: Confirmation) -> None:
    """Sends the email now, raising if the mail server refused it. shop.confirmations sends each
    order's once. In production a mail server must be set: the console's "sent" reaches no
    buyer, so the email is refused, and kept to be sent once there is one."""
    if settings.DJANGO_ENV == "production" and settings.EMAIL_BACKEND == CONSOLE_BACKEND:
        raise ImproperlyConfigured("no mail server is set (EMAIL_HOST)")
    context = {
        "c": confirmation,
        "total": f"${confirmation.total_cents // 100:,}.{confirmation.total_cents % 100:02d}",
        "link": order_link(number=confirmation.number, email=confirmation.email),
    }
    if confirmation.kind == NOT_PLACED:
        subject, template = f"We could not place your order {confirmation.number}", "shop/emails/order_not_placed.txt"
    else:
        subject, template = f"Your order {confirmation.number} is confirmed", "shop/emails/order_confirmation.txt"
    send_mail(
        subject=subject,
        message=render_to_string(template, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[confirmation.email],
    )
