"""The sale allocation's side of the hot path: reserving units in one conditional UPDATE, and
the refusals an order can meet (not hot, not on sale, outside the window, sold out, a reused
key, throttled) with the HTTP answer each gives.

Accepting an order lives in `orders.acceptance`, the pre-write gate in `orders.gate`, the
order's lifecycle in `orders.lifecycle`, placing it in `orders.placement`, the outbox in
`orders.outbox` and the sweepers in `orders.sweeps`."""

from __future__ import annotations

import logging

from django.db.models import F
from django.db.models.functions import Now

from orders.models import SaleAllocation
from orders.selectors import REMAINING_TTL, hot_product_window, remaining_cache_key
from orders.status import cache_set_quietly

logger = logging.getLogger(__name__)


class OrderRefused(Exception):
    """The order cannot be accepted; `status` and `payload` are the HTTP answer."""

    status = 409
    code = "refused"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.payload = {"error": self.code, "detail": detail, **extra}
        self.headers: dict[str, str] = {}


class SoldOut(OrderRefused):
    """Not as many left as asked for: none ("Sold out."), or fewer, which the detail says, so
    the buyer may order what is left (the code stays `sold_out`, with `remaining`)."""

    code = "sold_out"
    # Known never to have been ordered with this key (the gate's armed known keys): answered
    # without looking the key up in the database.
    unseen = False

    def __init__(self, detail: str = "Sold out.", *, remaining: int, **extra):
        if remaining > 0:
            detail = f"Only {remaining} left: order {remaining} or fewer."
        super().__init__(detail, remaining=remaining, **extra)

    def never_ordered(self) -> SoldOut:
        self.unseen = True
        return self


class NotHot(OrderRefused):
    status = 404
    code = "not_hot"


class NotOnSale(OrderRefused):
    status = 404
    code = "not_on_sale"


class SaleNotStarted(OrderRefused):
    code = "sale_not_started"


class SaleEnded(OrderRefused):
    code = "sale_ended"


class IdempotencyKeyReused(OrderRefused):
    status = 422
    code = "idempotency_key_reused"


class PlacedByMonolith(OrderRefused):
    """The monolith already answered this key for good (the route was off when the buyer first
    sent it): it placed the order, or the card was declined there. The answer is the monolith's,
    never a second order nor a second try of the card. The view gives it."""

    code = "placed_by_monolith"


class RetryLater(OrderRefused):
    """A refusal that says when to try again: `retry_after` seconds, in the body and the header."""

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class Throttled(RetryLater):
    status = 429
    code = "throttled"


class StockChanging(RetryLater):
    """Units came back to a sold-out sale whose buyers some process still answers from memory
    (the gate's lease), and the lease was taken again each time this buyer waited it out."""

    status = 503
    code = "unavailable"


def hot_product_refusal(product: dict | None) -> OrderRefused | None:
    """Why this product cannot be ordered on the hot path now, from the cached product (the
    reservation checks the allocation row again)."""
    if product is None or not product["is_hot"]:
        return NotHot("This product is not on the hot path.")
    if not product["is_on_sale"]:
        return NotOnSale("This product is not on sale.")
    window = hot_product_window(product)
    if window == "not_started":
        return SaleNotStarted("The sale has not started yet.", starts_at=product["starts_at"].isoformat())
    if window == "ended":
        return SaleEnded("The sale has ended.")
    return None


def allocation_reserve(*, allocation_id: int, quantity: int) -> None:
    """Takes `quantity` from the allocation in one conditional UPDATE: the WHERE clause is
    re-checked after any concurrent writer commits, so the allocation is never oversold.
    The sale's window is judged by the database's clock, one clock for every web host.
    Raises SoldOut, NotHot, NotOnSale, SaleNotStarted or SaleEnded."""
    reserved = (
        SaleAllocation.objects.filter(
            pk=allocation_id,
            is_hot=True,
            allocated__gte=F("reserved") + F("sold") + quantity,
            # The cached product may be a moment old: the database says whether it is on sale.
            product__is_active=True,
            product__deleted_at__isnull=True,
        )
        .exclude(starts_at__gt=Now())
        .exclude(ends_at__lte=Now())
        .update(reserved=F("reserved") + quantity)
    )
    if reserved != 1:
        raise allocation_refusal(allocation_id=allocation_id)


def allocation_refusal(*, allocation_id: int) -> OrderRefused:
    """Why the allocation refused a reservation just now, on the database's clock as the
    reservation judged it: NotHot, NotOnSale, SaleNotStarted, SaleEnded or SoldOut (then the remaining
    figure is cached, so the next buyers are answered from the cache without touching the row)."""
    allocation = (
        SaleAllocation.objects.select_related("product").annotate(db_now=Now()).filter(pk=allocation_id).first()
    )
    if allocation is None or not allocation.is_hot:
        return NotHot("This product is not on the hot path.")
    if not allocation.product.is_on_sale:
        return NotOnSale("This product is not on sale.")
    window = allocation.window_state(allocation.db_now)
    if window == "not_started":
        return SaleNotStarted("The sale has not started yet.", starts_at=allocation.starts_at.isoformat())
    if window == "ended":
        return SaleEnded("The sale has ended.")
    cache_set_quietly(remaining_cache_key(allocation_id), allocation.remaining, REMAINING_TTL)
    return SoldOut("Sold out.", remaining=allocation.remaining)
