"""Orders of record: what the legacy backend placed, with its lines, prices and payment trace."""

from django.db import models
from django.utils import timezone


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", "Placed"

    # Given in the same transaction as the insert ("L" + zero-padded id), so it is unique and
    # increasing; empty only inside that transaction.
    number = models.CharField(max_length=32, unique=True, null=True, editable=False)  # noqa: DJ001 - NULLs never clash
    # The caller's idempotency key: the unique constraint is what stops an order being placed twice.
    reference = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED, db_index=True)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(max_length=254)
    # Never the whole card number: only what a receipt shows.
    card_last4 = models.CharField(max_length=4)
    authorisation_code = models.CharField(max_length=32)
    total_cents = models.PositiveBigIntegerField()
    processing_ms = models.PositiveIntegerField(help_text="Time the backend spent placing the order.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.number or f"order {self.pk}"

    @staticmethod
    def number_for(pk: int) -> str:
        return f"L{pk:08d}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="+")
    # Copies taken at placement: the catalogue may change later, the order must not.
    product_slug = models.SlugField(max_length=200)
    title = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price_cents = models.PositiveIntegerField()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="legacy_order_line_unique_product"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="legacy_order_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents
