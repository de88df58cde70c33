"""A live sale's window, which the beat and a merchant both act on: the beat closes a sale once
its end has passed, and a merchant may move that end (extend a sale about to end, or one that
ended a moment ago and is not closed yet) or change its limit per order. Each writes the sale's
row asking again, in the same UPDATE, whether the sale is still as it read it, so whichever
commits first decides: an end moved before the beat's close keeps the sale open, and a change
saved after the close is refused, the merchant told that the sale closed."""

from __future__ import annotations

import logging

from django.db.models.functions import Now
from django.utils import timezone

from orders import sales
from orders.models import SaleAllocation, SaleState
from orders.sale_terms import SaleRefused
from orders.signals import allocation_changed

logger = logging.getLogger(__name__)


def sales_due_close() -> list[str]:
    """Closes the open sales whose window has ended or whose hot path was switched off by
    other means; returns their products' slugs. The end is judged by the database's clock, as
    acceptance judges it: a beat on a host whose clock runs ahead would close a sale whose
    buyers are still being accepted."""
    due = SaleAllocation.objects.filter(state=SaleState.OPEN).select_related("product")
    closed = []
    for allocation in due.filter(ends_at__lte=Now()) | due.filter(is_hot=False):
        try:
            # Due as read here; the close asks again, as a merchant may have extended it since.
            sales.sale_close(allocation=allocation, due_only=True)
        except sales.SaleBusy as exc:
            logger.warning("sale of %s not closed yet: %s", allocation.product.slug, exc)
            continue
        except SaleRefused as exc:
            # Extended by a merchant (or closed by one) since it was read: nothing to do.
            logger.info("sale of %s left as it is: %s", allocation.product.slug, exc)
            continue
        closed.append(allocation.product.slug)
    return closed


def sale_terms_save(allocation: SaleAllocation, *, per_order_limit: int, starts_at, ends_at) -> None:
    """Saves an open sale's limit per order and window, only while it is still open: told
    "changed" about a sale the beat (or another merchant) closed meanwhile, a merchant would
    count on buyers who are turned away, and on units already given back to open stock.
    Only these columns: reserved and sold move under the buyers' feet."""
    saved = SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.OPEN).update(
        per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at, updated_at=timezone.now()
    )
    if not saved:
        state = SaleAllocation.objects.filter(pk=allocation.pk).values_list("state", flat=True).first()
        raise sale_closed_meanwhile(allocation, state=state)
    allocation.per_order_limit, allocation.starts_at, allocation.ends_at = per_order_limit, starts_at, ends_at
    # An UPDATE sends no post_save: the buyers' cached sale follows the new limit and window.
    allocation_changed(sender=SaleAllocation, instance=allocation)


def sale_closed_meanwhile(allocation: SaleAllocation, *, state: str | None) -> SaleRefused:
    """The refusal of a change to an open sale that is open no longer (`state`, as read now)."""
    phrase = "closed" if state in (SaleState.CLOSING, SaleState.CLOSED) else "no longer open"
    return SaleRefused(
        f"The sale of {allocation.product.slug} was {phrase} while this change was being saved (its window "
        "had ended, or it was closed elsewhere): nothing was saved. Reload the page to see it as it is now, "
        "and open the sale again to go on selling."
    )
