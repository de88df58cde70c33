"""The storefront's checkouts in the unified log: placed (written with the receipt), declined
and failed, as shop.storefront CHECKOUT/ORDER events. Never card data."""

from __future__ import annotations

from django.db import transaction

from events.services import event_append

SOURCE = "shop.storefront"


def _append(*, status: str, data: dict, resource: str) -> None:
    event_append(
        source=SOURCE,
        detail_type="State change Notification",
        type="CHECKOUT",
        subtype="ORDER",
        status=status,
        data=data,
        resources=[resource],
    )


def checkout_placed_append(*, number: str, reference: str, lines: list[dict], total_cents: int) -> None:
    """In the caller's transaction, the one that records the receipt."""
    data = {"number": number, "reference": reference, "lines": lines, "total_cents": total_cents}
    _append(status="PLACED", data=data, resource=number)


def checkout_refused_append(*, reference: str, lines: list[dict], outcome: str, retryable: bool) -> None:
    """A checkout the legacy API did not place: DECLINED for a declined card, FAILED otherwise
    (`reason` is the client's outcome; `retryable` says the same reference may still place it).
    Its own short transaction: there is no receipt to write with it."""
    status = "DECLINED" if outcome == "declined" else "FAILED"
    data = {"reference": reference, "lines": lines, "reason": outcome, "retryable": retryable}
    with transaction.atomic():
        _append(status=status, data=data, resource=reference)
