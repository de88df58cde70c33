"""The buyers' order emails (confirmed, or not placed after all) as an outbox: each written in
the transaction that ends its order (shop.OrderEmail) and sent once that commits. One the mail
server refused, or whose process stopped between the commit and the send, is sent by beat's
sweep (shop.tasks.confirmations_unsent_sweep), a minute later, then twice as long each time up
to an hour. One sender holds a row at a time, on the database's clock: a sender that dies lets
go when its hold ends, and then the buyer may get the email twice, never not at all."""

from __future__ import annotations

import logging
import secrets
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from shop.emails import CONFIRMED, NOT_PLACED, Confirmation, order_confirmation_send
from shop.models import OrderEmail

logger = logging.getLogger(__name__)

# A failed send is tried again after a minute, then twice as long each time, up to an hour.
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 3600
# How long a sender holds a row: far longer than a live send takes (EMAIL_TIMEOUT bounds each of
# the mail server's answers, not the whole exchange), so only a sender that died lets it go.
HOLD_SECONDS = 300
# A sweep sends for this long at most, and stops when the mail server fails (it is down): what is
# left waits for the next sweep rather than holding a worker for each row's timeout.
SWEEP_BUDGET_SECONDS = 30.0
# What the mail server says of one email (its recipient, its sender, its content), not of itself:
# the sweep goes on to the next.
ADDRESS_REFUSALS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)

Sent = Literal["sent", "failed", "refused", "not_held"]


def _db_now_plus(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def _free() -> Q:
    """Rows nobody holds (never held, or whose hold ended) that are still to be sent."""
    return Q(sent_at__isnull=True, attempts__lt=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS) & (
        Q(held_until__isnull=True) | Q(held_until__lte=Now())
    )


def order_confirmation_on_commit(confirmation: Confirmation) -> None:
    """Writes the confirmation in the caller's transaction (the one completing the order) and
    sends it once that commits: an order that rolls back sends nothing, and one that commits
    has its email kept until it is sent."""
    # Once per order and kind, and per legacy order: a second write (its order completed twice
    # over, or recorded by both origins) is ignored, and the send below finds it sent, held or
    # not its own.
    OrderEmail.objects.bulk_create(
        [
            OrderEmail(
                number=confirmation.number,
                kind=confirmation.kind,
                legacy_id=confirmation.legacy_id,
                reason=confirmation.reason[:300],
                name=confirmation.name,
                email=confirmation.email,
                lines=[list(line) for line in confirmation.lines],
                total_cents=confirmation.total_cents,
            )
        ],
        ignore_conflicts=True,
    )
    if confirmation.legacy_id is not None:
        _covered_mark(confirmation)
    transaction.on_commit(lambda: _send_after_commit(confirmation.number, confirmation.kind))


def _covered_mark(confirmation: Confirmation) -> None:
    """Where the other origin's email confirmed the same legacy order first, this order's own
    confirmation is written as told by it: never sent, and still this number's confirmation."""
    if OrderEmail.objects.filter(number=confirmation.number, kind=confirmation.kind).exists():
        return
    told = (
        OrderEmail.objects.filter(legacy_id=confirmation.legacy_id, kind=confirmation.kind)
        .values_list("number", flat=True)
        .first()
    )
    OrderEmail.objects.bulk_create(
        [
            OrderEmail(
                number=confirmation.number,
                kind=confirmation.kind,
                covered_by=told or "",
                name=confirmation.name,
                email=confirmation.email,
                lines=[list(line) for line in confirmation.lines],
                total_cents=confirmation.total_cents,
                sent_at=timezone.now(),
            )
        ],
        ignore_conflicts=True,
    )


def _send_after_commit(number: str, kind: str) -> None:
    # The order has committed: nothing here may fail the request or task that placed it.
    try:
        confirmation_send(number, kind)
    except Exception:
        logger.exception("could not send the %s email of order %s now; the sweep will", kind, number)


def order_email_withdraw(*, number: str, kind: str) -> int:
    """Deletes order `number`'s unsent email of `kind` that nobody is sending: one overtaken by
    the order's later end (a failed order placed after all is not told "not placed" last),
    also while it waits out a failed send (no sender holds it then: its confirmation may be
    another origin's email, under another number, which the send's own check cannot see)."""
    deleted, _ = (
        OrderEmail.objects.filter(_free() | Q(held_by="") | Q(attempts__gte=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS))
        .filter(number=number, kind=kind, sent_at__isnull=True)
        .delete()
    )
    return deleted


def confirmation_send(number: str, kind: str = CONFIRMED) -> Sent:
    """Sends order `number`'s email of `kind` if it is unsent and nobody holds it: "sent",
    "failed" (the mail server is down or unset: kept, to be tried again later), "refused" (the
    mail server refused this email, its address: kept likewise, the others still sent) or
    "not_held" (sent already, held by another sender, given up, or waiting out its last
    failure). A "not placed" email is not sent once the order was confirmed after all."""
    if kind == NOT_PLACED and OrderEmail.objects.filter(number=number, kind=CONFIRMED).exists():
        order_email_withdraw(number=number, kind=kind)
        return "not_held"
    holder = secrets.token_hex(8)
    held = OrderEmail.objects.filter(_free(), number=number, kind=kind).update(
        held_until=_db_now_plus(HOLD_SECONDS), held_by=holder, attempts=F("attempts") + 1
    )
    if not held:
        return "not_held"
    row = OrderEmail.objects.get(number=number, kind=kind)
    try:
        order_confirmation_send(
            Confirmation(
                number=row.number,
                name=row.name,
                email=row.email,
                lines=[(title, quantity) for title, quantity in row.lines],
                total_cents=row.total_cents,
                kind=row.kind,
                reason=row.reason,
            )
        )
    except Exception as exc:  # the order stands; the email waits for the mail server
        retry_in = min(RETRY_FIRST_SECONDS * 2 ** (row.attempts - 1), RETRY_MAX_SECONDS)
        unset = isinstance(exc, ImproperlyConfigured)
        if unset:  # no mail server yet: not an attempt, so the email waits for one, never given up
            OrderEmail.objects.filter(pk=row.pk, held_by=holder).update(attempts=F("attempts") - 1)
            row.attempts -= 1
        last = row.attempts >= settings.SHOP_CONFIRMATION_MAX_ATTEMPTS
        logger.log(
            logging.ERROR if last else logging.WARNING,
            "could not send the %s email of order %s (attempt %s of %s)%s",
            kind,
            number,
            row.attempts,
            settings.SHOP_CONFIRMATION_MAX_ATTEMPTS,
            ": giving up" if last else f"; trying again in {retry_in} s",
            exc_info=True,
        )
        OrderEmail.objects.filter(pk=row.pk, sent_at__isnull=True, held_by=holder).update(
            held_until=_db_now_plus(retry_in), held_by="", last_error=repr(exc)[:500]
        )
        return "refused" if isinstance(exc, ADDRESS_REFUSALS) else "failed"
    # Sent, whoever holds it now (a sender that outlived its hold still sent it).
    OrderEmail.objects.filter(pk=row.pk, sent_at__isnull=True).update(
        sent_at=Now(), held_until=None, held_by="", last_error=""
    )
    return "sent"


@dataclass(frozen=True)
class ConfirmationSweep:
    sent: int
    failed: int
    deleted: int

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "deleted": self.deleted}


def confirmations_unsent_sweep(*, limit: int = 200) -> ConfirmationSweep:
    """Sends the emails not sent at once whose hold has ended, oldest first, until the mail
    server fails one (it is down: one it refuses for its address does not stop the rest) or
    SWEEP_BUDGET_SECONDS pass; deletes those sent, or given up, more
    than SHOP_CONFIRMATION_KEEP_DAYS ago (the buyer's address with them)."""
    deadline = time.monotonic() + SWEEP_BUDGET_SECONDS
    due = list(OrderEmail.objects.filter(_free()).order_by("created_at", "pk").values_list("number", "kind")[:limit])
    sent = failed = 0
    for number, kind in due:
        if time.monotonic() > deadline:
            break
        try:
            outcome = confirmation_send(number, kind)
        except DatabaseError:
            logger.exception("could not send the %s email of order %s", kind, number)
            failed += 1
            continue
        if outcome == "sent":
            sent += 1
        elif outcome == "refused":
            failed += 1
        elif outcome == "failed":
            failed += 1
            break
    cutoff = ExpressionWrapper(
        Now() - timedelta(days=settings.SHOP_CONFIRMATION_KEEP_DAYS), output_field=DateTimeField()
    )
    given_up = Q(sent_at__isnull=True, attempts__gte=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS, created_at__lt=cutoff)
    deleted, _ = OrderEmail.objects.filter(Q(sent_at__lt=cutoff) | given_up).delete()
    return ConfirmationSweep(sent=sent, failed=failed, deleted=deleted)
