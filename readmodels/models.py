"""The read models' tables. Each view's rows carry a generation: its consumer writes the live
one, a rebuild fills a fresh one beside it and swaps it in (events/snapshots.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Generation(models.Model):
    """Which generation of a view's rows is live, and the last one handed out."""

    view = models.CharField(max_length=100, primary_key=True)
    live = models.PositiveIntegerField(default=1)
    last = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.view}: generation {self.live}"


class InventoryLevel(models.Model):
    """One product's stock as the log tells it: on hand and held in the stock of record, and
    in an open sale, allocated, reserved and sold."""

    generation = models.PositiveIntegerField()
    product = models.SlugField(max_length=200)
    on_hand = models.IntegerField(default=0)
    held = models.IntegerField(default=0)
    sale_state = models.CharField(max_length=16, blank=True, default="")
    allocated = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    sold = models.IntegerField(default=0)

    class Meta:
        ordering = ["product"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "product"], name="readmodels_inventory_one_per_product")
        ]
        permissions = [("view_dashboard", "Can view the live sale dashboard")]

    def __str__(self) -> str:
        return f"{self.product}: {self.available} available"

    @property
    def available(self) -> int:
        return max(self.on_hand - self.held, 0)

    @property
    def remaining(self) -> int:
        """Units of the sale still for sale: allocated, less reserved and sold."""
        return max(self.allocated - self.reserved - self.sold, 0)


class SalesMinute(models.Model):
    """Orders placed in the stock of record in one minute, for one product and channel."""

    generation = models.PositiveIntegerField()
    product = models.SlugField(max_length=200)
    minute = models.DateTimeField()
    # "sale" for orders drawn from a sale's hold (the hot path), "storefront" for the others.
    channel = models.CharField(max_length=16)
    orders = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0)
    revenue_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["minute", "product", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "product", "minute", "channel"], name="readmodels_sales_one_per_minute"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.minute:%H:%M} {self.channel}: {self.orders} orders"


class Tally(models.Model):
    """Sales per supplier or per category: hello-retail's leaderboard."""

    class Kind(models.TextChoices):
        SUPPLIER = "supplier", "Supplier"
        CATEGORY = "category", "Category"

    generation = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=200)
    orders = models.PositiveIntegerField(default=0)
    units = models.PositiveIntegerField(default=0)
    revenue_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["kind", "-revenue_cents"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "kind", "key"], name="readmodels_tally_one_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.revenue_cents} cents"


class PurchaseOrder(models.Model):
    """A vendor reorder: drafted when a product's available stock falls below its reorder
    point, confirmed or cancelled by a merchant, and received into the stock of record."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        CONFIRMED = "confirmed", "Confirmed"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    reference = models.CharField(max_length=64, unique=True, editable=False)
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="purchase_orders")
    supplier = models.ForeignKey("shop.Supplier", null=True, on_delete=models.PROTECT, related_name="purchase_orders")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # What the crossing looked like: available stock then, and the reorder point it fell below.
    available_then = models.IntegerField(default=0, editable=False)
    reorder_point = models.PositiveIntegerField(default=0, editable=False)
    event_position = models.BigIntegerField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One crossing, one draft: however many orders cross the point together.
            models.UniqueConstraint(
                fields=["product"], condition=Q(status="draft"), name="readmodels_one_draft_per_product"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="readmodels_purchase_quantity_positive"),
            # One crossing's event drafts once, however often it is replayed to the consumer.
            models.UniqueConstraint(
                fields=["event_position"],
                condition=Q(event_position__isnull=False),
                name="readmodels_one_draft_per_crossing_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.quantity} × {self.product}"


class ReorderCrossing(models.Model):
    """A fall below a product's reorder point (its STOCK/PRODUCT/CHANGED event, by its position
    in the log) and the purchase order that answered it: drafted for it, or the draft already
    open then. A replay of the log finds it here and drafts nothing, even once that draft has
    been received or cancelled."""

    event_position = models.BigIntegerField(primary_key=True)
    purchase_order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="crossings")

    def __str__(self) -> str:
        return f"crossing at {self.event_position}: {self.purchase_order_id}"
