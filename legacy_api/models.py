"""Records of the legacy backend: orders with their lines, holds on stock, card authorisations
and the tokens its callers present."""

from django.db import models
from django.utils import timezone


class Order(models.Model):
    class Status(models.TextChoices):
        # Claimed by the request working on it (see lease_until); never shown as an order.
        PENDING = "pending", "Pending"
        PLACED = "placed", "Placed"

    # Given in the same transaction as the insert ("L" + zero-padded id), so it is unique and
    # increasing; empty only inside that transaction.
    number = models.CharField(max_length=32, unique=True, null=True, editable=False)  # noqa: DJ001 - NULLs never clash
    # The caller's idempotency key: the unique constraint is what stops an order being placed twice,
    # and, inserted pending before the card is authorised, what stops it being authorised twice.
    reference = models.CharField(max_length=64, unique=True)
    # HMAC of the body that placed it: the same reference with another body is refused.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # The caller (its token's) that placed it: it alone reads it, with the callers in `readers`.
    caller = models.CharField(max_length=32, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED, db_index=True)
    # The stock of record's hold its units were drawn from, if any.
    hold = models.ForeignKey("Hold", null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(max_length=254)
    # Never the whole card number: only what a receipt shows.
    card_last4 = models.CharField(max_length=4)
    authorisation_code = models.CharField(max_length=32)
    total_cents = models.PositiveBigIntegerField()
    processing_ms = models.PositiveIntegerField(help_text="Time the backend spent placing the order.")
    # A pending row belongs to lease_owner until lease_until (the database's clock); after
    # that a retry may take it over, as its first worker died.
    lease_owner = models.CharField(max_length=32, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.number or f"order {self.pk}"

    @staticmethod
    def number_for(pk: int) -> str:
        return f"L{pk:08d}"


class OrderReader(models.Model):
    """A caller other than the one that placed an order that may read it: it sent the order's
    reference with the very body that placed it (customer, lines and the card's last four digits),
    as the storefront and the hot path's worker do when both carry one buyer's Idempotency-Key,
    which is one order whichever of them placed it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="readers")
    caller = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "caller"], name="legacy_order_reader_unique")]

    def __str__(self) -> str:
        return f"{self.caller} reads {self.order}"


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


class Hold(models.Model):
    """Units of one product kept aside for one caller (a sale's allocation): only orders naming
    the hold may take them. `quantity` is what it still keeps; Product.held is the sum over
    open holds, changed in the same transaction as every hold."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RELEASED = "released", "Released"

    # The caller (its token's) that took it: the only one that reads, resizes, releases or draws
    # on it. Its references are its own, so another caller cannot learn which ones are taken.
    caller = models.CharField("owner", max_length=32, editable=False)
    reference = models.CharField(max_length=64)
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="+")
    # What the hold was created with: the same reference is a replay only with the same body.
    requested = models.PositiveIntegerField(editable=False)
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["caller", "reference"], name="legacy_hold_reference_unique_per_caller"),
            models.CheckConstraint(
                condition=~models.Q(status="released") | models.Q(quantity=0), name="legacy_hold_released_keeps_none"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class PaymentAuthorisation(models.Model):
    """The fake authoriser's ledger, keyed by the order reference as idempotency key: the same
    key gets back its live authorisation instead of a second one."""

    key = models.CharField(max_length=64, db_index=True)
    approved = models.BooleanField()
    code = models.CharField(max_length=32, blank=True)
    last4 = models.CharField(max_length=4)
    decline_reason = models.CharField(max_length=32, blank=True)
    amount_cents = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            # At most one live approval per key: two racing requests cannot both be charged.
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(approved=True, voided_at__isnull=True),
                name="legacy_one_live_authorisation_per_key",
            )
        ]

    def __str__(self) -> str:
        return self.code or f"declined {self.key}"


class ApiToken(models.Model):
    """A caller's bearer token, kept as its SHA-256 only: the token itself is shown once."""

    caller = models.CharField(max_length=32, db_index=True)
    label = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["caller", "-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.caller} {self.token_hash[:8]}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class StockReceipt(models.Model):
    """Goods received into the stock of record (a purchase order delivered), once per
    reference: the same receipt sent again adds nothing."""

    reference = models.CharField(max_length=64, unique=True)
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="legacy_receipt_quantity_positive")
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.quantity} × {self.product_id}"
