"""What the sale admin's form asks for, whatever the sale's state: opening, resizing or closing
it through `orders.sales`, or keeping a draft that holds nothing."""

from __future__ import annotations

from orders.models import SaleAllocation, SaleState
from orders.sale_window import sale_closed_meanwhile, sale_terms_save
from orders.sales import SaleRefused, sale_close, sale_open, sale_resize, sale_terms_check
from shop.models import Product


def sale_update(
    *,
    product: Product,
    is_hot: bool,
    allocated: int,
    per_order_limit: int,
    starts_at=None,
    ends_at=None,
    seen_state: str | None = None,
) -> SaleAllocation:
    """What the admin's form asks for, whatever the sale's state: opens it (is_hot on),
    resizes it (allocated), closes it (is_hot off), or keeps a draft that holds nothing.
    `seen_state`: the state of the sale the page was checked against. An open sale closed since
    (the beat at its end) is refused, not opened afresh by a page that only moved its end."""
    current = SaleAllocation.objects.filter(product=product).first()
    state = current.state if current else SaleState.DRAFT
    if seen_state == SaleState.OPEN and state != SaleState.OPEN:
        raise sale_closed_meanwhile(current, state=state)
    if is_hot and state != SaleState.OPEN:
        return sale_open(
            product=product, units=allocated, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at
        )
    if state == SaleState.OPEN:
        # Closing asks no window of the sale: one whose end has passed (the beat closes it a
        # moment later, or not while no worker runs) is switched off from its page too.
        window_end = ends_at if is_hot else None
        sale_terms_check(units=allocated, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=window_end)
        if is_hot and allocated != current.allocated:
            sale_resize(allocation=current, units=allocated)
        # Only while it is still open: the beat may close it at its old end meanwhile.
        sale_terms_save(current, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at)
        return sale_close(allocation=current) if not is_hot else current
    if state == SaleState.CLOSING and allocated != current.allocated:
        raise SaleRefused(
            f"The sale is closing: its allocation follows the {current.reserved} units still in flight.",
            field="allocated",
        )
    # A draft (or a closed sale kept for the next) holds nothing yet, but its terms are the
    # ones its opening will take: refused now, on their field, not only then.
    sale_terms_check(units=allocated, per_order_limit=per_order_limit)
    if current is None:
        current = SaleAllocation(product=product, allocated=allocated)
        _terms_save(current, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at)
        return current
    if state == SaleState.CLOSED and allocated < current.reserved + current.sold:
        # The row keeps the last opening's figures until the next opening counts afresh.
        raise SaleRefused(
            f"The last sale sold {current.sold}: keep at least that while the sale is closed, "
            "or turn the hot path on to open a new sale of fewer units.",
            field="allocated",
        )
    if state != SaleState.CLOSING:
        current.allocated, current.is_hot = allocated, False
        current.save(update_fields=["allocated", "is_hot", "updated_at"])
    _terms_save(current, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at)
    return current


def _terms_save(allocation: SaleAllocation, *, per_order_limit: int, starts_at, ends_at) -> None:
    allocation.per_order_limit = per_order_limit
    allocation.starts_at, allocation.ends_at = starts_at, ends_at
    if allocation.pk is None:
        allocation.save()
    else:  # only these: reserved and sold move under the buyers' feet
        allocation.save(update_fields=["per_order_limit", "starts_at", "ends_at", "updated_at"])
