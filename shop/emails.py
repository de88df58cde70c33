"""The buyer's confirmation email, once an order is complete, whichever side placed it: the
monolith when it places an order, the hot path's worker when the legacy API has it. Written in
the order's own transaction (shop.ConfirmationEmail) and sent after it commits; one that could
not be sent then is sent by beat's sweep (shop.tasks.confirmations_unsent_sweep)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from shop.models import ConfirmationEmail, PlacedOrder
from shop.order_links import EMAIL_LINK_VALIDITY, order_link_path

logger = logging.getLogger(__name__)

# A failed send is tried again after a minute, then twice as long each time, up to an hour.
CONFIRMATION_RETRY_FIRST_SECONDS = 60
CONFIRMATION_RETRY_MAX_SECONDS = 3600
# Held while being sent: the mail server's timeout and this much more (a dead sender's hold ends).
CONFIRMATION_HOLD_MARGIN_SECONDS = 30


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
    """Sends the email now, raising if the mail server refused it. Callers send each order's
    once: shop.ConfirmationEmail's hold (confirmation_send)."""
    context = {
        "c": confirmation,
        "total": f"${confirmation.total_cents // 100:,}.{confirmation.total_cents % 100:02d}",
        "link": order_link(number=confirmation.number, email=confirmation.email),
    }
    send_mail(
        subject=f"Your order {confirmation.number} is confirmed",
        message=render_to_string("shop/emails/order_confirmation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[confirmation.email],
    )


def order_confirmation_on_commit(confirmation: Confirmation) -> None:
    """Writes the confirmation in the caller's transaction (the one completing the order) and
    sends it once that commits: an order that rolls back sends nothing, and one that commits
    has its email kept until it is sent (the sweep sends what this process could not)."""
    # Once per order: a second write of the same number (its order completed twice over) is
    # ignored, and the send below finds it sent or held.
    ConfirmationEmail.objects.bulk_create(
        [
            ConfirmationEmail(
                number=confirmation.number,
                name=confirmation.name,
                email=confirmation.email,
                lines=[list(line) for line in confirmation.lines],
                total_cents=confirmation.total_cents,
            )
        ],
        ignore_conflicts=True,
    )
    transaction.on_commit(lambda: _send_after_commit(confirmation.number))


def _send_after_commit(number: str) -> None:
    # The order has committed: nothing here may fail the request or task that placed it.
    try:
        confirmation_send(number)
    except Exception:
        logger.exception("could not send the confirmation of order %s now; the sweep will", number)


def confirmation_send(number: str) -> bool:
    """Sends order `number`'s confirmation if it is unsent and no other process holds it: True
    when this call sent it. A failure is kept for the sweep to try again later; so is a send
    whose process died before it was marked sent (the buyer may then get it twice, never not
    at all)."""
    now = timezone.now()
    hold = timedelta(seconds=settings.EMAIL_TIMEOUT + CONFIRMATION_HOLD_MARGIN_SECONDS)
    held = (
        ConfirmationEmail.objects.filter(number=number, sent_at__isnull=True)
        .filter(Q(held_until__isnull=True) | Q(held_until__lte=now))
        .filter(attempts__lt=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS)
        .update(held_until=now + hold, attempts=F("attempts") + 1)
    )
    if not held:
        return False
    row = ConfirmationEmail.objects.get(number=number)
    try:
        order_confirmation_send(
            Confirmation(
                number=row.number,
                name=row.name,
                email=row.email,
                lines=[(title, quantity) for title, quantity in row.lines],
                total_cents=row.total_cents,
            )
        )
    except Exception as exc:  # the order stands; the email waits for the mail server
        retry_in = min(CONFIRMATION_RETRY_FIRST_SECONDS * 2 ** (row.attempts - 1), CONFIRMATION_RETRY_MAX_SECONDS)
        last = row.attempts >= settings.SHOP_CONFIRMATION_MAX_ATTEMPTS
        logger.log(
            logging.ERROR if last else logging.WARNING,
            "could not email the confirmation of order %s (attempt %s of %s)%s",
            number,
            row.attempts,
            settings.SHOP_CONFIRMATION_MAX_ATTEMPTS,
            ": giving up" if last else f"; trying again in {retry_in} s",
            exc_info=True,
        )
        ConfirmationEmail.objects.filter(pk=row.pk, sent_at__isnull=True).update(
            held_until=timezone.now() + timedelta(seconds=retry_in), last_error=repr(exc)[:500]
        )
        return False
    ConfirmationEmail.objects.filter(pk=row.pk).update(sent_at=timezone.now(), held_until=None, last_error="")
    return True


@dataclass(frozen=True)
class ConfirmationSweep:
    sent: int
    failed: int
    deleted: int

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "deleted": self.deleted}


def confirmations_unsent_sweep(*, limit: int = 200) -> ConfirmationSweep:
    """Sends the confirmations not sent at once whose hold has ended (oldest first), and
    deletes those sent more than SHOP_CONFIRMATION_KEEP_DAYS ago."""
    now = timezone.now()
    numbers = list(
        ConfirmationEmail.objects.filter(sent_at__isnull=True, attempts__lt=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS)
        .filter(Q(held_until__isnull=True) | Q(held_until__lte=now))
        .order_by("created_at")
        .values_list("number", flat=True)[:limit]
    )
    sent = sum(1 for number in numbers if confirmation_send(number))
    deleted, _ = ConfirmationEmail.objects.filter(
        sent_at__lt=now - timedelta(days=settings.SHOP_CONFIRMATION_KEEP_DAYS)
    ).delete()
    return ConfirmationSweep(sent=sent, failed=len(numbers) - sent, deleted=deleted)


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
