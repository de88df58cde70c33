"""A sale's lifecycle: opening it takes the allocation as a hold in the legacy API's stock of
record, resizing and closing move that hold, and orders settling after the close give back
what they no longer need. Reconciliation lives in `orders.sale_reconcile`, the terms a sale may
have (checked before any of it) in `orders.sale_terms`, the beat's close at a window's end and a
merchant's move of that end in `orders.sale_window`.

The invariant after every step: the hold keeps `allocated - sold` units, the ones the hot
path still owes (remaining plus reserved). The hold grows before the allocation does and
shrinks after it, so a step cut short leaves it too large, never too small: too large is
drift the reconciliation shrinks; too small would be an accepted order without its units.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.dispatch import Signal
from django.utils import timezone

import legacy_client
from config.locks import lock_held
from events.services import event_append
from legacy_client import LegacyRefused, LegacyUnavailable, OutOfStock
from orders.known_keys import known_keys_arm, known_keys_forget
from orders.models import SaleAllocation, SaleState
from orders.sale_terms import SaleAlreadyOpen, SaleRefused, draft_over_stock, sale_terms_check
from orders.selectors import dead_letters_note

__all__ = ["SaleBusy", "SaleRefused", "draft_over_stock", "sale_terms_check"]
from orders.signals import allocation_changed
from shop.models import Product

logger = logging.getLogger(__name__)

# Longer than the few legacy calls one step makes (each at most LEGACY_API_TIMEOUT): the lock's
# lease where it is the cache's (config.locks); on PostgreSQL it has none.
SALE_LOCK_SECONDS = 60


# Sent once a sale has stopped taking orders, whoever closed it (the `sale close` command, the
# admin's form or action, the beat at the window's end), with `product`: the edge stops sending
# the product's pages to the hot path (edge.signals). Each receiver returns what it changed,
# as lines a merchant reads.
sale_closed = Signal()


class SaleBusy(SaleRefused):
    def __init__(self):
        super().__init__("Another change to this sale is under way; try again in a moment.")


@contextmanager
def sale_lock(product_id: int) -> Iterator[None]:
    """One change to a product's sale at a time (merchant, command, beat), across processes
    (config.locks); SaleBusy when another change holds it.

    Not a row lock: the allocation's row is the one every buyer waits for, and the legacy
    calls made under this lock take far longer than a reservation may wait."""
    with lock_held(f"orders:sale-lock:{product_id}", lease_seconds=SALE_LOCK_SECONDS, busy=SaleBusy):
        yield


# What every sale's hold reference starts with: the reconciliation gives back the hot path's
# holds so named that no sale owns (orders.sale_reconcile.orphans_release).
SALE_HOLD_PREFIX = "sale-"


def hold_reference_new(product: Product) -> str:
    return f"{SALE_HOLD_PREFIX}{product.pk}-{secrets.token_hex(6)}"


def taken_message(taken: int) -> str:
    return f"At least {taken}: {taken} {'is' if taken == 1 else 'are'} already reserved or sold."


def _unavailable(exc: Exception) -> SaleRefused:
    return SaleRefused(f"The order backend cannot be reached ({exc}); nothing was changed.")


def _forget_cached(allocation: SaleAllocation) -> None:
    """Writes made with UPDATE send no post_save: drop the cached product as a save would."""
    allocation_changed(sender=SaleAllocation, instance=allocation)


def sale_open(
    *, product: Product, units: int, per_order_limit: int | None = None, starts_at=None, ends_at=None
) -> SaleAllocation:
    """Takes `units` of the product as a fresh hold, then opens the allocation on the hot
    path. Refused (nothing held, nothing saved) when the stock of record has fewer available
    or the product's last sale still owes units to orders in flight."""
    sale_terms_check(units=units, per_order_limit=per_order_limit, starts_at=starts_at, ends_at=ends_at)
    if not product.is_on_sale:
        raise SaleRefused(f"{product.title} is not on sale in the shop: make it active first.", field="product")
    with sale_lock(product.pk):
        allocation = SaleAllocation.objects.filter(product=product).first()
        if allocation is not None:
            if allocation.state == SaleState.OPEN:
                raise SaleAlreadyOpen(allocation)
            if allocation.state == SaleState.CLOSING:
                sale_closing_follow(allocation)
                if allocation.state == SaleState.CLOSING and not allocation.reserved:
                    # Its hold is still taken at the stock of record: a new hold would leave
                    # it there with no sale pointing at it.
                    raise SaleRefused(
                        "The last sale's hold could not be released at the stock of record yet; try again in a moment."
                    )
            if allocation.reserved:
                note = dead_letters_note(product_id=product.pk)
                raise SaleRefused(
                    f"{allocation.reserved} units of the last sale are still in orders in flight{note}; "
                    f"open it again once they are {'settled' if note else 'placed'}.",
                    field="allocated",
                )
        if per_order_limit is None and (allocation is None or allocation.opened_at is None):
            # The default limit (or a draft's, never opened), never above the first sale's units.
            kept = allocation.per_order_limit if allocation is not None else _default_per_order_limit()
            per_order_limit = min(kept, units)
        elif per_order_limit is None and allocation.per_order_limit > units:
            # The last sale's limit, which the merchant chose, is not changed behind their back.
            raise SaleRefused(
                f"The last sale's limit of {allocation.per_order_limit} per order is above this one's "
                f"{units} units: give a limit of at most {units} per order.",
                field="per_order_limit",
            )
        reference = hold_reference_new(product)
        try:
            legacy_client.hold_create(reference=reference, product=product.slug, quantity=units)
        except OutOfStock as exc:
            raise SaleRefused(
                f"Only {exc.available} available in the stock of record: allocate at most that.", field="allocated"
            )
        except LegacyUnavailable as exc:
            if exc.sent:
                # The request may have reached it and the hold been taken: a retry would take
                # a second one under a fresh reference. Given back, if it was taken.
                _release_quietly(reference)
            raise _unavailable(exc)
        except LegacyRefused as exc:
            fields = exc.data.get("fields") if isinstance(exc.data.get("fields"), dict) else {}
            if "product" in fields:
                raise SaleRefused(f"The stock of record refused the hold: {fields['product']}", field="product")
            raise SaleRefused(f"The stock of record refused the hold: {exc}", field="allocated")
        try:
            with transaction.atomic():
                _product_unchanged(product)
                allocation = allocation or SaleAllocation(product=product)
                # Counted afresh for every opening: `sold` is what was drawn on this hold.
                allocation.allocated, allocation.sold = units, 0
                allocation.is_hot, allocation.state = True, SaleState.OPEN
                allocation.hold_reference = reference
                allocation.opened_at, allocation.closed_at = timezone.now(), None
                allocation.starts_at, allocation.ends_at = starts_at, ends_at
                if per_order_limit is not None:
                    allocation.per_order_limit = per_order_limit
                allocation.save()
                _sale_event_append(allocation, status="OPENED")
                # Before the commit makes the sale visible: every key a buyer could replay.
                known_keys_arm(allocation_id=allocation.pk, product_id=product.pk)
        except BaseException:
            _release_quietly(reference)
            raise
    logger.info("sale of %s opened: %s units held as %s", product.slug, units, reference)
    return allocation


def _product_unchanged(product: Product) -> None:
    """Locks the product's row for the opening's transaction and refuses the opening when the
    product moved, or went off sale, since the sale began to open: the admin changes those only
    under the same lock, once it has asked whether a sale needs them (shop.product_address)."""
    now = (
        Product.objects.select_for_update()
        .filter(pk=product.pk)
        .values("slug", "category_id", "category__slug", "is_active", "deleted_at")
        .first()
    )
    if (
        now is None
        or not now["is_active"]
        or now["deleted_at"] is not None
        or (now["slug"], now["category_id"], now["category__slug"])
        != (product.slug, product.category_id, product.category.slug)
    ):
        raise SaleRefused(
            f"{product.title} was moved or taken off sale while its sale was being opened: nothing was "
            "opened. Try again.",
            field="product",
        )


def _default_per_order_limit() -> int:
    return SaleAllocation._meta.get_field("per_order_limit").default


def _sale_event_append(allocation: SaleAllocation, *, status: str) -> None:
    """SALE/ALLOCATION/OPENED or CLOSED in the unified log, inside the step's transaction."""
    figures = {k: getattr(allocation, k) for k in ("allocated", "reserved", "sold", "per_order_limit")}
    window = {k: v.isoformat() if (v := getattr(allocation, k)) else None for k in ("starts_at", "ends_at")}
    data = {"product": allocation.product.slug, **figures, "hold": allocation.hold_reference, **window}
    kinds = {"type": "SALE", "subtype": "ALLOCATION", "status": status}
    event_append(source="shop.merchant", detail_type="State change Notification", **kinds, data=data)


def sale_resized_append(allocation: SaleAllocation, *, units: int) -> None:
    """SALE/ALLOCATION/RESIZED: only `allocated` moved (reserved and sold move with orders)."""
    data = {"product": allocation.product.slug, "allocated": units, "hold": allocation.hold_reference}
    kinds = {"type": "SALE", "subtype": "ALLOCATION", "status": "RESIZED"}
    event_append(source="shop.merchant", detail_type="State change Notification", **kinds, data=data)


def sale_resize(*, allocation: SaleAllocation, units: int) -> SaleAllocation:
    """Sets an open sale's allocation to `units`, moving its hold: refused below what is
    already reserved or sold, or above what the stock of record can add."""
    sale_terms_check(units=units, per_order_limit=None)
    with sale_lock(allocation.product_id):
        allocation.refresh_from_db()
        if allocation.state != SaleState.OPEN:
            raise SaleRefused(f"The sale of {allocation.product.slug} is not open.", field="allocated")
        if units == allocation.allocated:
            return allocation
        if units > allocation.allocated:
            try:
                legacy_client.hold_set(reference=allocation.hold_reference, quantity=units - allocation.sold)
            except OutOfStock as exc:
                raise SaleRefused(
                    f"Only {exc.available} more available in the stock of record: "
                    f"allocate at most {allocation.allocated + exc.available}.",
                    field="allocated",
                )
            except LegacyUnavailable as exc:
                raise _unavailable(exc)
            except LegacyRefused as exc:
                raise SaleRefused(f"The stock of record refused the hold: {exc}", field="allocated")
            with transaction.atomic():
                SaleAllocation.objects.filter(pk=allocation.pk).update(allocated=units, updated_at=timezone.now())
                sale_resized_append(allocation, units=units)
        else:
            # Conditional: buyers reserve under our feet, and their units must stay allocated.
            with transaction.atomic():
                shrunk = SaleAllocation.objects.filter(
                    pk=allocation.pk, state=SaleState.OPEN, reserved__lte=units - F("sold")
                ).update(allocated=units, updated_at=timezone.now())
                if shrunk:
                    sale_resized_append(allocation, units=units)
            if not shrunk:
                allocation.refresh_from_db()
                taken = allocation.reserved + allocation.sold
                raise SaleRefused(taken_message(taken), field="allocated")
            allocation.refresh_from_db()
            _hold_shrink_quietly(allocation)
        allocation.refresh_from_db()
        _forget_cached(allocation)
    return allocation


def sale_close(*, allocation: SaleAllocation, due_only: bool = False) -> SaleAllocation:
    """Ends an open sale: buyers are turned away, the units left unsold go back to open stock,
    and the hold keeps only what orders in flight need (then nothing, once they settle).
    `due_only` (the beat): only while its window has ended or its hot path is off, asked again
    by the UPDATE itself, since a merchant may have moved its end since the beat read it."""
    with sale_lock(allocation.product_id):
        with transaction.atomic():
            rows = SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.OPEN)
            if due_only:
                rows = rows.filter(Q(ends_at__lte=Now()) | Q(is_hot=False))
            closed = rows.update(
                is_hot=False,
                state=SaleState.CLOSING,
                # In the same UPDATE that stops new reservations: nothing can slip in between.
                allocated=F("reserved") + F("sold"),
                closed_at=timezone.now(),
                updated_at=timezone.now(),
            )
            allocation.refresh_from_db()
            if closed:
                _sale_event_append(allocation, status="CLOSED")
        if not closed:
            due = ", or its end was moved later" if due_only else ""
            raise SaleRefused(f"The sale of {allocation.product.slug} is not open{due}.")
        known_keys_forget(allocation_id=allocation.pk)
        _forget_cached(allocation)
        # The edge first: the sale takes no orders now, and until its routes are off the hot
        # path answers its pages 404 and its orders `not_hot`. The hold's follow-up waits on
        # the legacy API, up to its timeout when that is busy (a sale's end) or down.
        announced = sale_closed_announce(allocation)
        followed = sale_closing_follow(allocation)
    logger.info("sale of %s closed: %s sold", allocation.product.slug, allocation.sold)
    # Told "the rest released" while the legacy API had refused or not answered, a merchant
    # would sell those units elsewhere in vain: the reconciliation gives them back later.
    held = [] if followed else [HOLD_NOT_GIVEN_BACK]
    allocation.closed_notes = held + announced
    return allocation


HOLD_NOT_GIVEN_BACK = (
    "The order backend could not be told: the sale's hold still keeps its units from other buyers. "
    "They are given back when it answers (the reconciliation asks again every few minutes)."
)


def sale_closed_announce(allocation: SaleAllocation) -> list[str]:
    """Tells the receivers of `sale_closed` (the edge) that the sale is over; what they
    changed, as lines. A receiver that fails is logged: the sale stays closed, and the buyers
    the edge still sends to the hot path are told it is over."""
    notes = []
    for receiver, answer in sale_closed.send_robust(sender=SaleAllocation, product=allocation.product):
        if isinstance(answer, Exception):
            logger.error("sale of %s closed, but %r failed: %s", allocation.product.slug, receiver, answer)
            notes.append(f"Not done after the close: {answer}")
        elif answer:
            notes.extend(answer)
    return notes


def sale_order_settled(*, order_id: int) -> bool:
    """A worker is done with this order: when its product's sale is closing, the hold and the
    allocation give back what the order no longer needs. False when that could not be done
    now (another change to the sale held its lock, or the legacy API could not be told): the
    caller asks again shortly (`orders.tasks.sale_settle`), since the change holding the lock
    may have read this order as still in flight, and the reconciliation is minutes away."""
    product_id = (
        SaleAllocation.objects.filter(product__hot_orders=order_id, state=SaleState.CLOSING)
        .values_list("product_id", flat=True)
        .first()
    )
    if product_id is None:
        return True
    try:
        with sale_lock(product_id):
            return sale_closing_follow(SaleAllocation.objects.get(product_id=product_id))
    except SaleBusy:
        return False


def sale_closing_follow(allocation: SaleAllocation) -> bool:
    """A closing sale's allocation and hold follow its orders in flight: units of failed
    orders go back to open stock, and the hold is released once no order needs it. Called
    under the sale lock; False when the legacy API could not be told (tried again later)."""
    SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.CLOSING).update(
        allocated=F("reserved") + F("sold"), updated_at=timezone.now()
    )
    allocation.refresh_from_db()
    if allocation.state != SaleState.CLOSING:
        return True
    try:
        if allocation.reserved == 0:
            if allocation.hold_reference:
                legacy_client.hold_release(reference=allocation.hold_reference)
            SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.CLOSING, reserved=0).update(
                state=SaleState.CLOSED, updated_at=timezone.now()
            )
            allocation.refresh_from_db()
            _forget_cached(allocation)
            return True
        _hold_shrink(allocation)
    except (LegacyUnavailable, LegacyRefused) as exc:
        logger.warning("hold %s of a closing sale not adjusted: %s", allocation.hold_reference, exc)
        return False
    return True


def _hold_shrink(allocation: SaleAllocation) -> None:
    """Shrinks the hold to `allocated - sold` as just read, never grows it: an order in flight
    may have drawn on the hold before its sale was counted, and growing the hold back would
    take units from open stock it does not need."""
    owed = allocation.allocated - allocation.sold
    hold = legacy_client.hold_get(reference=allocation.hold_reference)
    if hold is not None and hold.quantity > owed:
        legacy_client.hold_set(reference=allocation.hold_reference, quantity=owed)


def _hold_shrink_quietly(allocation: SaleAllocation) -> None:
    try:
        _hold_shrink(allocation)
    except (LegacyUnavailable, LegacyRefused) as exc:
        # Too large a hold keeps units from other buyers, nothing worse: reconciliation fixes it.
        logger.warning("hold %s not shrunk: %s", allocation.hold_reference, exc)


def _release_quietly(reference: str) -> None:
    try:
        legacy_client.hold_release(reference=reference)
    except (LegacyUnavailable, LegacyRefused):
        logger.exception("hold %s taken for a sale that did not open is not released", reference)
