"""A sale against the stock of record: its figures side by side (`sale status`), and the
reconciliation (Gilt's true-up) that compares each open sale's hold with its allocation and
its orders, reports the drift and repairs what is safe to repair, gives back the sale holds no
sale owns, and trues the inventory view up with the stock of record."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

import legacy_client
from legacy_client import LegacyRefused, LegacyUnavailable, OutOfStock
from orders.models import HotOrder, OrderStatus, Reservation, SaleAllocation, SaleState
from orders.sale_window import sales_due_close
from orders.sales import (
    SALE_HOLD_PREFIX,
    SALE_LOCK_SECONDS,
    SaleBusy,
    hold_reference_new,
    sale_closing_follow,
    sale_lock,
    sale_resized_append,
)
from orders.signals import allocation_changed
from readmodels.inventory import inventory_true_up
from readmodels.selectors import inventory_figures
from shop.models import Product

logger = logging.getLogger(__name__)

IN_STEP = "in step"


@dataclass
class SaleCheck:
    """One sale as reconciled: our figures and the hold's as they were found (so `drift` is the
    drift found), and what was done about a difference."""

    product: str
    # None for an orphan of a product that has no sale.
    state: str | None
    hold_reference: str
    allocated: int
    reserved: int
    sold: int
    # Units the hold must keep: remaining plus reserved.
    owed: int
    hold: int | None
    # Orders a worker has sent or is sending: they may have drawn on the hold already.
    in_flight: int
    # Units of the completed orders of this opening, to check `sold` against.
    sold_by_orders: int
    action: str = IN_STEP
    # A hold of the hot path's that no open or closing sale names, released by the reconciliation
    # (the sale's figures are 0: it owes nothing to a sale).
    orphan: bool = False
    # False when the hold could not be read (the legacy API did not answer, or the sale was
    # changing): its figures are unknown, not a hold of 0.
    checked: bool = True

    @property
    def drift(self) -> int | None:
        """Units held beyond (positive) or short of (negative) what the sale owes; None when the
        hold could not be read. A hold the stock of record does not have counts as 0."""
        return (self.hold or 0) - self.owed if self.checked else None

    def figures(self) -> str:
        """The hold beside what the sale owes, as the command and the admin tell it."""
        hold = "?" if self.hold is None else self.hold
        drift = "?" if self.drift is None else f"{self.drift:+d}"
        return f"owed {self.owed}, hold {hold}, drift {drift}"

    def as_dict(self) -> dict:
        return {**asdict(self), "drift": self.drift}


def _in_flight(allocation: SaleAllocation) -> int:
    return HotOrder.objects.filter(
        product_id=allocation.product_id, status=OrderStatus.PROCESSING, attempts__gt=0
    ).count()


def _sold_by_orders(allocation: SaleAllocation) -> int:
    orders = HotOrder.objects.filter(
        product_id=allocation.product_id, status=OrderStatus.COMPLETE, reservation=Reservation.CONFIRMED
    )
    if allocation.opened_at:
        orders = orders.filter(completed_at__gte=allocation.opened_at)
    return orders.aggregate(units=Sum("quantity"))["units"] or 0


def _check(allocation: SaleAllocation, hold: int | None) -> SaleCheck:
    return SaleCheck(
        product=allocation.product.slug,
        state=allocation.state,
        hold_reference=allocation.hold_reference,
        allocated=allocation.allocated,
        reserved=allocation.reserved,
        sold=allocation.sold,
        owed=allocation.allocated - allocation.sold,
        hold=hold,
        in_flight=_in_flight(allocation),
        sold_by_orders=_sold_by_orders(allocation),
    )


def sale_status(*, product: Product) -> dict:
    """The sale's figures with the hold's and the product's stock of record, as `sale status`
    shows them; the legacy figures are None, and `error` says why, when the legacy API cannot be
    reached or does not know the product; the sale's (its state included) when it has no sale."""
    allocation = SaleAllocation.objects.filter(product=product).first()
    # A product never put on sale has no state and no sale figures (None), not a draft's.
    figures = {"product": product.slug, "state": None, "is_hot": None, "hold_reference": None}
    figures.update(allocated=None, reserved=None, sold=None, remaining=None, starts_at=None, ends_at=None)
    figures.update(hold=None, on_hand=None, held=None, available=None)
    if allocation is not None:
        figures.update(
            state=allocation.state,
            is_hot=allocation.is_hot,
            hold_reference=allocation.hold_reference,
            allocated=allocation.allocated,
            reserved=allocation.reserved,
            sold=allocation.sold,
            remaining=allocation.remaining,
            # The sale's window, as `sale open --starts/--ends` set it (None: from opening, until closed).
            **{k: v.isoformat() if (v := getattr(allocation, k)) else None for k in ("starts_at", "ends_at")},
        )
    # The inventory view's figures, fed by the log, beside those of record.
    figures["inventory"] = inventory_figures(product=product.slug)
    try:
        if allocation is not None and allocation.hold_reference:
            hold = legacy_client.hold_get(reference=allocation.hold_reference)
            figures["hold"] = hold.quantity if hold else None
        stock = legacy_client.stock_get(product=product.slug)
    except (LegacyUnavailable, LegacyRefused) as exc:
        figures["error"] = str(exc)
        return figures
    if stock is None:
        figures["error"] = f"stock of {product.slug} not found in the stock of record"
    else:
        figures.update(on_hand=stock.on_hand, held=stock.held, available=stock.available)
    return figures


def sale_reconcile(*, product: Product | None = None) -> list[SaleCheck]:
    """Trues up every open or closing sale (or one product's) with its hold. Closes the sales
    due to close first. Repairs only what cannot take units an order in flight may need:
    a hold larger than owed is shrunk, and a short one grown, only while no order is in flight
    (a worker's draw on the hold is counted as sold only after the legacy API answers, so a
    short hold is expected then); a hold missing, or released at the stock of record, is taken
    again at once. Then releases the sale
    holds no sale owns (`orphans_release`), each reported after the sales' checks."""
    sales_due_close()
    allocations = SaleAllocation.objects.filter(state__in=[SaleState.OPEN, SaleState.CLOSING]).select_related("product")
    if product is not None:
        allocations = allocations.filter(product=product)
    checks = []
    for allocation in allocations.order_by("pk"):
        try:
            with sale_lock(allocation.product_id):
                check = _reconcile_one(allocation)
        except SaleBusy:
            allocation.refresh_from_db()
            check = _check(allocation, None)
            check.action, check.checked = "not checked: another change to this sale is under way", False
        if not check.checked:
            logger.warning("sale of %s not reconciled: %s", check.product, check.action)
        elif check.action != IN_STEP:
            logger.warning("sale of %s drifted: %s", check.product, check.as_dict())
        checks.append(check)
    checks.extend(orphans_release(product=product))
    # The inventory view trued up with the stock of record too (a correction is logged).
    inventory_true_up(products=[product.slug] if product is not None else None)
    return checks


def _reconcile_one(allocation: SaleAllocation) -> SaleCheck:
    if allocation.state == SaleState.CLOSING:
        sale_closing_follow(allocation)
    allocation.refresh_from_db()
    reference = allocation.hold_reference
    try:
        hold = legacy_client.hold_get(reference=reference) if reference else None
    except (LegacyUnavailable, LegacyRefused) as exc:
        check = _check(allocation, None)
        check.action, check.checked = f"not checked: {exc}", False
        return check
    check = _check(allocation, hold.quantity if hold else None)
    if allocation.state == SaleState.CLOSED:
        check.action = "released"
    if check.sold != check.sold_by_orders:
        # Read apart, the figures can disagree while an order completes between the reads (the
        # sale read before it sold, the hold after): nothing is repaired on them, and the next
        # run reads them again.
        check.action = f"not repaired: {check.sold} counted sold, {check.sold_by_orders} in completed orders"
        return check
    if allocation.state == SaleState.CLOSED:
        return check
    try:
        # A hold released at the stock of record (by a caller outside the sale, a hand at its
        # API) keeps nothing and cannot be set again: taken afresh, as a missing one is. Its
        # units were given back to everyone; orders in flight that drew on it before then only
        # make the fresh hold a little large, which the next run shrinks.
        live = hold is not None and hold.status != "released"
        check.action = _repair(allocation, check, hold_known=live) or check.action
    except OutOfStock as exc:
        check.action = f"not repaired: the hold is short and only {exc.available} are available"
        cut = _sale_cut_to_hold(allocation, check)
        if cut is not None:
            check.action += f"; the sale cut to {cut} allocated, what the hold and the sold units cover"
    except (LegacyUnavailable, LegacyRefused) as exc:
        check.action = f"not repaired: {exc}"
    return check


def _repair(allocation: SaleAllocation, check: SaleCheck, *, hold_known: bool) -> str | None:
    """The repair for the drift found, done; None when there is none to make."""
    if not hold_known:
        if check.owed <= 0:
            return None
        # No order can have drawn on a hold the stock of record never had (or gave back): a
        # fresh one is safe.
        reference = hold_reference_new(allocation.product)
        legacy_client.hold_create(reference=reference, product=allocation.product.slug, quantity=check.owed)
        SaleAllocation.objects.filter(pk=allocation.pk).update(hold_reference=reference)
        return f"retaken as {reference}"
    if check.drift == 0:
        return None
    if check.in_flight:
        return f"not repaired: {check.in_flight} orders in flight may have drawn on the hold"
    legacy_client.hold_set(reference=allocation.hold_reference, quantity=check.owed)
    return f"{'shrunk' if check.drift > 0 else 'grown'} to {check.owed}"


def _sale_cut_to_hold(allocation: SaleAllocation, check: SaleCheck) -> int | None:
    """A hold short of what the sale owes that the stock of record cannot grow (changed outside
    the shop, its units sold elsewhere since): the sale's allocation is cut to what the hold
    keeps, so that no buyer is given a 202 for a unit nobody holds; never below what accepted
    orders reserved. The new allocation, or None when there was nothing to cut.

    An order that completes draws its units from the hold as it counts them sold, so `sold +
    hold` as read stays what the sale can sell while buyers reserve and workers place orders."""
    units = check.sold + (check.hold or 0)
    with transaction.atomic():
        cut = SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.OPEN, allocated__gt=units).update(
            allocated=Greatest(F("sold") + F("reserved"), Value(units)), updated_at=timezone.now()
        )
        if not cut:
            return None
        allocation.refresh_from_db()
        sale_resized_append(allocation, units=allocation.allocated)
    allocation_changed(sender=SaleAllocation, instance=allocation)
    logger.error(
        "sale of %s cut to %s allocated: its hold %s keeps only %s and the stock of record cannot grow it",
        check.product,
        allocation.allocated,
        check.hold_reference,
        check.hold,
    )
    return allocation.allocated


def _owned(references: list[str]) -> set[str]:
    """Those of `references` an open or closing sale names as its hold."""
    return set(
        SaleAllocation.objects.filter(
            state__in=[SaleState.OPEN, SaleState.CLOSING], hold_reference__in=references
        ).values_list("hold_reference", flat=True)
    )


# How old a sale hold no sale names must be before the reconciliation gives it back: well past
# any opening's lock (SALE_LOCK_SECONDS), and a clock between the two services that is a little off.
ORPHAN_MIN_AGE = timedelta(seconds=5 * SALE_LOCK_SECONDS)


def orphans_release(*, product: Product | None = None) -> list[SaleCheck]:
    """Releases the hot path's open sale holds (or one product's) that no open or closing sale
    names: a hold whose create the legacy API committed only after the shop, its answer having
    timed out, had released it (and found nothing then), or whose release failed. Left alone,
    such a hold keeps its units from every other buyer for ever.

    Each product's are released under its sale lock, with the sale read again under it: a
    sale opening holds that lock from its hold's create until its allocation names it, so its
    hold is never taken for an orphan. A product whose lock is taken waits for the next pass,
    and a legacy API that cannot be reached is logged, reported as a check not made (so that
    `sale reconcile` does not exit 0 on a pass that could not look), and tried again on the next
    pass."""
    try:
        holds = legacy_client.holds_list(status="open", product=product.slug if product is not None else None)
    except (LegacyUnavailable, LegacyRefused) as exc:
        logger.warning("sale holds no sale owns not looked for: %s", exc)
        return [_orphans_not_looked_for(product, exc)]
    # A hold younger than ORPHAN_MIN_AGE may be a sale's whose opening is still under way (on
    # Redis without PostgreSQL the sale lock has a lease, which a slow opening can outlive): left
    # to a later pass.
    young = timezone.now() - ORPHAN_MIN_AGE
    candidates = [
        hold
        for hold in holds
        if hold.reference.startswith(SALE_HOLD_PREFIX) and hold.created_at is not None and hold.created_at < young
    ]
    # Read without the lock first, so that the sales that own their holds are not locked for nothing.
    owned = _owned([hold.reference for hold in candidates])
    by_product: dict[str, list[legacy_client.Hold]] = {}
    for hold in candidates:
        if hold.reference not in owned:
            by_product.setdefault(hold.product, []).append(hold)
    products = {found.slug: found for found in Product.objects.filter(slug__in=by_product)}
    checks = []
    for slug, orphans in sorted(by_product.items()):
        if slug not in products:
            logger.warning("sale holds %s of unknown product %s not released", [h.reference for h in orphans], slug)
            continue
        try:
            with sale_lock(products[slug].pk):
                checks.extend(_orphans_release_one(products[slug], orphans))
        except SaleBusy:
            logger.info("sale holds of %s no sale owns left to the next pass: its sale is changing", slug)
    return checks


def _orphans_not_looked_for(product: Product | None, exc: Exception) -> SaleCheck:
    return SaleCheck(
        product=product.slug if product is not None else "",
        state=None,
        hold_reference="",
        allocated=0,
        reserved=0,
        sold=0,
        owed=0,
        hold=None,
        in_flight=0,
        sold_by_orders=0,
        action=f"holds no sale owns not looked for: {exc}",
        orphan=True,
        checked=False,
    )


def _orphans_release_one(product: Product, holds: list[legacy_client.Hold]) -> list[SaleCheck]:
    """Releases those of `holds` no sale names now; called under the product's sale lock."""
    owned = _owned([hold.reference for hold in holds])
    state = SaleAllocation.objects.filter(product=product).values_list("state", flat=True).first()
    checks = []
    for hold in holds:
        if hold.reference in owned:
            continue
        check = SaleCheck(
            product=product.slug,
            state=state,
            hold_reference=hold.reference,
            allocated=0,
            reserved=0,
            sold=0,
            owed=0,
            hold=hold.quantity,
            in_flight=0,
            sold_by_orders=0,
            orphan=True,
        )
        try:
            legacy_client.hold_release(reference=hold.reference)
        except (LegacyUnavailable, LegacyRefused) as exc:
            check.action = f"not released: {exc}"
        else:
            check.action = f"released {hold.quantity} units held for no sale"
        logger.warning("sale hold %s of %s owned by no sale: %s", hold.reference, product.slug, check.action)
        checks.append(check)
    return checks
