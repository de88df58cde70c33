"""A checkout in doubt: noted before its order goes to the legacy API and dropped once an
answer settles it, so that an answer lost (a timeout, the process killed mid-call, the buyer
gone) still leaves something to look up (shop.checkout_sweep)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from shop.models import PendingCheckout

if TYPE_CHECKING:
    from shop.checkouts import Delivery


def pending_checkout_note(
    *,
    reference: str,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    lines: list[dict],
    fingerprint: str = "",
) -> None:
    """Before each try's call: the first try's buyer, delivery and lines are kept (an order the
    reference placed is that try's), and the lookup is put off past this call's end."""
    look_after = timezone.now() + timedelta(seconds=settings.SHOP_CHECKOUT_SWEEP_AFTER_SECONDS)
    PendingCheckout.objects.update_or_create(
        reference=reference,
        defaults={"look_after": look_after},
        create_defaults={
            "look_after": look_after,
            "customer": customer if customer is not None and customer.is_authenticated else None,
            **asdict(delivery),
            "lines": lines,
            "fingerprint": fingerprint,
        },
    )


def pending_checkout_settle(*, reference: str) -> None:
    """Once an answer settled the reference: its receipt recorded, or a definite no for it."""
    PendingCheckout.objects.filter(reference=reference).delete()
