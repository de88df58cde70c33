"""The inventory view: per product, on hand and held in the stock of record and, in an open
sale, allocated, reserved and sold, folded from the log within a second of each event.

Past a product's first STOCK event (whose figures after the change give the view its start)
only changes are added up (each STOCK event's `delta` and `held_delta`, each hot order's move),
never the figures an event reports after its change: two transactions on one product may be
read in the log in the other order than they committed (it is ordered by transaction id), and
sums do not mind the order. The sale's figures restart when a sale opens. The true-up compares
the view with the stock of record and, where they differ, writes an INVENTORY/PRODUCT/CORRECTED
event carrying the difference, which the view folds in like any other."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection, transaction

from events.models import Checkpoint, DeadLetter, Event
from events.selectors import checkpoint_mark, events_after_queryset
from events.services import event_append
from readmodels.models import InventoryLevel
from readmodels.projections import Projection
from readmodels.stock_stamp import moves_available, stock_stamp_move
from shop.models import Product

logger = logging.getLogger(__name__)

NAME = "inventory"
SOURCE = "shop.readmodels"
HOTPATH = "shop.hotpath"
# The sale's state in the view, as SALE/ALLOCATION events name it.
SALE_STATES = {"OPENED": "open", "CLOSED": "closed"}
# A true-up of the whole catalogue waits while the view is further behind the log than this.
TRUE_UP_MAX_BEHIND = 500


def _changes_stock(event: Event) -> bool:
    return (event.type, event.subtype) == ("STOCK", "PRODUCT") or (event.type, event.status) == (
        "INVENTORY",
        "CORRECTED",
    )


def _stock_step(figures: tuple[int, int] | None, event: Event) -> tuple[int, int]:
    """(on hand, held) after the event. A product's first STOCK event gives its figures as
    they were after it (stock loaded before anything was logged); after that only changes
    are added, so the order two transactions are read in does not matter."""
    data = event.data
    if figures is None and event.type == "STOCK":
        return int(data["on_hand"]), int(data["held"])
    on_hand, held = figures or (0, 0)
    return on_hand + int(data.get("delta") or 0), held + int(data.get("held_delta") or 0)


def _stock_step_readable(figures: tuple[int, int] | None, event: Event) -> tuple[int, int] | None:
    """`_stock_step`, for the true-up: an event whose figures are no numbers is one the view
    never folds in (its consumer dead-letters it, a rebuild leaves it out), so it changes
    nothing here either, and the other products are still compared."""
    try:
        # Readable as `apply` reads it: the figures after the change and the change itself.
        _stock_step(None, event)
        _stock_step((0, 0), event)
        return _stock_step(figures, event)
    except (AttributeError, KeyError, TypeError, ValueError):
        logger.warning("inventory true-up: event %s has no stock figures the view can fold in; left out", event.pk)
        return figures


class InventoryView(Projection):
    name = NAME
    model = InventoryLevel
    keys = ("product",)
    figures = ("on_hand", "held", "sale_state", "allocated", "reserved", "sold")

    def apply(self, event: Event, generation: int) -> None:
        data = event.data
        product = data.get("product")
        if not product:
            return
        key = {"product": product}
        if _changes_stock(event):
            # Past the product's first change, only its deltas (see _stock_step).
            on_hand, held = _stock_step(None, event)
            self.add(
                generation,
                key,
                on_hand=int(data.get("delta") or 0),
                held=int(data.get("held_delta") or 0),
                created={"on_hand": on_hand, "held": held},
            )
        elif event.source == HOTPATH and event.type == "CHECKOUT":
            if event.status == "ACCEPTED":
                self.add(generation, key, reserved=int(data["quantity"]))
            elif data.get("reserved_delta") or data.get("sold_delta"):
                self.add(generation, key, reserved=int(data["reserved_delta"]), sold=int(data["sold_delta"]))
        elif event.type == "SALE" and event.subtype == "ALLOCATION":
            if event.status == "RESIZED":
                self.put(generation, key, allocated=int(data["allocated"]))
                return
            values = {"allocated": int(data["allocated"]), "sale_state": SALE_STATES.get(event.status, "")}
            if event.status == "OPENED":
                # Counted afresh for every opening, as the allocation is.
                values.update(reserved=int(data["reserved"]), sold=int(data["sold"]))
            self.put(generation, key, **values)

    def wants(self, event: Event) -> bool:
        return bool(event.data.get("product")) and (
            _changes_stock(event) or (event.source == HOTPATH and event.type == "CHECKOUT") or event.type == "SALE"
        )

    def batch_done(self, events: list[Event]) -> None:
        # Once a batch, for each product whose sale it changed: a stampede's batch is hundreds
        # of one product's events.
        products = sorted({event.data["product"] for event in events if _changes_sale(event)})
        if products:
            transaction.on_commit(lambda: [remaining_publish(product=product) for product in products])
        # The pages show the view's on hand less held, and whether a sale is open (the cards'
        # "Flash sale"): what they keep is stale once either moved.
        if any(
            (_changes_stock(event) and moves_available(event.data)) or _opens_or_closes_sale(event) for event in events
        ):
            stock_stamp_move()

    def swap(self, generation: int) -> None:
        super().swap(generation)
        products = list(self.rows(generation).values_list("product", flat=True))
        transaction.on_commit(lambda: [remaining_publish(product=product) for product in products])
        stock_stamp_move()


def _opens_or_closes_sale(event: Event) -> bool:
    return (event.type, event.subtype) == ("SALE", "ALLOCATION") and event.status in SALE_STATES


def _changes_sale(event: Event) -> bool:
    return (event.source == HOTPATH and event.type == "CHECKOUT") or event.type == "SALE"


def remaining_key(product: str) -> str:
    return f"readmodels:remaining:{product}"


def remaining_publish(*, product: str) -> int:
    """Puts the product's units left in its open sale (-1: no open sale in the view) in the
    cache, where the sale page reads it: a cache fed by the log's changes, not by a timed
    refresh (Gilt's inventory cache); returns the figure."""
    row = VIEW.live_rows().filter(product=product).first()
    remaining = row.remaining if row is not None and row.sale_state == "open" else -1
    cache.set(remaining_key(product), remaining, None)
    return remaining


VIEW = InventoryView()
handle = VIEW.consumer()


def _record_locked(slugs: list[str]) -> list[Product]:
    queryset = Product.objects.filter(slug__in=slugs).order_by("pk")
    if connection.features.has_select_for_update:
        queryset = queryset.select_for_update(of=("self",), no_key=connection.features.has_select_for_no_key_update)
    return list(queryset)


def _folded(figures: tuple[int, int] | None, slug: str, after) -> tuple[int, int]:
    """(on hand, held) of the view once it has folded in the product's committed events after
    its checkpoint, as `apply` folds them."""
    queryset = events_after_queryset(after=after).filter(data__product=slug, type__in=["STOCK", "INVENTORY"])
    ordering = ("xid", "position") if connection.vendor == "postgresql" else ("position",)
    for event in queryset.order_by(*ordering).only("type", "subtype", "status", "data"):
        if _changes_stock(event):
            figures = _stock_step_readable(figures, event)
    return figures or (0, 0)


def _open_letters_folded(figures: tuple[int, int] | None, slug: str) -> tuple[int, int] | None:
    """The figures with the product's changes the view dead-lettered and still owes: a redrive
    or a rebuild folds them in later, so the true-up must not correct them away meanwhile (the
    view would count them twice then). A redrive of the view's letter waits for the checkpoint
    the caller holds."""
    letters = (
        DeadLetter.objects.filter(consumer=NAME, redriven_at__isnull=True, event__data__product=slug)
        .select_related("event")
        .order_by("event__xid", "event__position")
    )
    for letter in letters:
        if _changes_stock(letter.event):
            figures = _stock_step_readable(figures, letter.event)
    return figures


def _far_behind() -> bool:
    """Whether the view has more than TRUE_UP_MAX_BEHIND events still to fold in. Each product's
    comparison folds the product's events after the checkpoint, a read of all of them, under the
    checkpoint's lock that the view's consumer waits on: past a sale (or a restore) the whole
    catalogue's would read the backlog once per product and hold the consumer back from it."""
    after = checkpoint_mark(Checkpoint.objects.filter(consumer=NAME).first())
    return events_after_queryset(after=after)[TRUE_UP_MAX_BEHIND:].exists()


def _catalogue_unsettled() -> list[str]:
    """The products, in the catalogue's order, whose view may differ from the stock of record:
    its figures not the record's in one snapshot of both, or changes of it the view has still to
    fold in (events after its checkpoint, dead letters it owes). Each is then compared exactly,
    under its locks; the rest of the catalogue costs no query of its own. A few reads whatever
    the catalogue's size, in one snapshot on PostgreSQL, so a change committing between them is
    not taken for drift, nor drift for agreement (called outside a transaction, as the beat and
    `sale reconcile` call it; inside one, each read has a snapshot of its own)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        viewed = {
            product: (on_hand, held) for product, on_hand, held in VIEW.rows().values_list("product", "on_hand", "held")
        }
        after = checkpoint_mark(Checkpoint.objects.filter(consumer=NAME).first())
        pending = events_after_queryset(after=after).filter(type__in=["STOCK", "INVENTORY"])
        owed = DeadLetter.objects.filter(consumer=NAME, redriven_at__isnull=True)
        unsettled = set(pending.values_list("data__product", flat=True).distinct())
        unsettled |= set(owed.values_list("event__data__product", flat=True).distinct())
        return [
            slug
            for slug, stock, held in Product.objects.order_by("pk").values_list("slug", "stock", "held")
            if slug in unsettled or viewed.get(slug, (0, 0)) != (stock, held)
        ]


def inventory_true_up(*, products: list[str] | None = None) -> list[dict]:
    """Compares the view with the stock of record, product by product, and logs a correction
    for each difference; returns the corrections made.

    Exact while orders keep coming: the view's checkpoint is held (no batch of its consumer
    runs meanwhile) and the product's row is locked as every change of stock locks it, so the
    record's figures are the sum of every committed change; what the view will hold once it
    has folded in the committed events after its checkpoint is compared with them. The whole
    catalogue's compares exactly only the products that may differ (`_catalogue_unsettled`), and
    waits while the view is far behind the log (`_far_behind`): it corrects nothing then, and
    the view catches up first."""
    if products is None and _far_behind():
        logger.info("inventory true-up deferred: the view is over %d events behind the log", TRUE_UP_MAX_BEHIND)
        return []
    slugs = products or _catalogue_unsettled()
    corrections = []
    for slug in slugs:
        with transaction.atomic():
            Checkpoint.objects.get_or_create(consumer=NAME)
            checkpoint = Checkpoint.objects.select_for_update().get(consumer=NAME)
            record = _record_locked([slug])
            if not record:
                continue
            product = record[0]
            row = VIEW.rows().filter(product=slug).values_list("on_hand", "held").first()
            on_hand, held = _folded(_open_letters_folded(row, slug), slug, checkpoint_mark(checkpoint))
            delta, held_delta = product.stock - on_hand, product.held - held
            if not delta and not held_delta:
                continue
            data = {
                "product": slug,
                "on_hand": product.stock,
                "held": product.held,
                "delta": delta,
                "held_delta": held_delta,
                "reason": "true_up",
            }
            event_append(
                source=SOURCE,
                detail_type="State change Notification",
                type="INVENTORY",
                subtype="PRODUCT",
                status="CORRECTED",
                data=data,
            )
            corrections.append(data)
            # A product the view had never seen is news; one it had wrong is drift.
            level = logging.WARNING if row is not None else logging.INFO
            transaction.on_commit(lambda data=data, level=level: logger.log(level, "inventory trued up: %s", data))
    return corrections
