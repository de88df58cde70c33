"""The hot path's records: sale allocations, order intents with their stage history, the
outbox, the order-number counter, the legacy-capacity slots and the dead letters."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from legacy_client.references import reference_for_key
from shop.catalogue_version import VersionedQuerySet
from shop.db_functions import email_folded_index


class SaleState(models.TextChoices):
    DRAFT = "draft", "not opened"
    OPEN = "open", "open"
    # Closed to buyers; the hold still keeps the units of orders in flight.
    CLOSING = "closing", "closing"
    CLOSED = "closed", "closed"


class SaleAllocationQuerySet(VersionedQuerySet):
    # Reservations move with every order; the hot path's cached product does not hold them.
    counter_fields = frozenset({"reserved", "sold", "updated_at"})


class SaleAllocation(models.Model):
    """The part of a product's stock a merchant puts on the hot path for a sale.

    `allocated - reserved - sold` is what buyers can still take; every change goes through a
    conditional UPDATE (see services), and the check constraint makes an oversell
    impossible even for code that forgets to. While a sale is open or closing, the units
    still owed (`allocated - sold`) are a hold in the legacy API's stock of record, under
    `hold_reference` (see `orders.sales`), so no other channel can sell them.
    """

    product = models.OneToOneField("shop.Product", on_delete=models.PROTECT, related_name="sale_allocation")
    is_hot = models.BooleanField(
        "hot", default=False, help_text="Orders for this product go through the hot path's queue."
    )
    allocated = models.PositiveIntegerField(default=0, help_text="Units on sale through the hot path.")
    reserved = models.PositiveIntegerField(default=0, editable=False)
    sold = models.PositiveIntegerField(default=0, editable=False)
    per_order_limit = models.PositiveSmallIntegerField(default=2)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: on sale now.")
    ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: until the sale is closed (selling out does not close it)."
    )
    state = models.CharField(max_length=8, choices=SaleState.choices, default=SaleState.DRAFT, editable=False)
    # Fresh for every opening, so the orders of one sale never draw on another's hold.
    hold_reference = models.CharField(max_length=64, blank=True, editable=False)
    opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SaleAllocationQuerySet.as_manager()

    class Meta:
        ordering = ["product__title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(allocated__gte=F("reserved") + F("sold")), name="sale_allocation_no_oversell"
            ),
            models.CheckConstraint(condition=Q(per_order_limit__gte=1), name="sale_allocation_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"Sale allocation of {self.product}"

    @property
    def remaining(self) -> int:
        return max(self.allocated - self.reserved - self.sold, 0)

    def window_state(self, now=None) -> str:
        """ "open", "not_started" or "ended"."""
        now = now or timezone.now()
        if self.starts_at and now < self.starts_at:
            return "not_started"
        if self.ends_at and now >= self.ends_at:
            return "ended"
        return "open"


class OrderStatus(models.TextChoices):
    """What the buyer sees."""

    PROCESSING = "processing", "processing"
    COMPLETE = "complete", "complete"
    FAILED = "failed", "failed"


class OrderStage(models.TextChoices):
    """What the merchant sees."""

    QUEUED = "queued", "queued"
    VALIDATING = "validating", "validating"
    PAYMENT_AUTHORISED = "payment_authorised", "payment authorised"
    SENT_TO_FULFILMENT = "sent_to_fulfilment", "sent to fulfilment"
    CARD_DECLINED = "card_declined", "card declined"
    SOLD_OUT = "sold_out", "sold out"
    EXPIRED = "expired", "reservation expired"
    DEAD_LETTERED = "dead_lettered", "dead-lettered"
    # A merchant gave up on a dead-lettered order the legacy API does not have.
    CANCELLED = "cancelled", "cancelled by the merchant"


class Reservation(models.TextChoices):
    HELD = "held", "held"
    CONFIRMED = "confirmed", "confirmed (sold)"
    RELEASED = "released", "released"


class HotOrder(models.Model):
    """An order accepted by the hot path, on its way to the legacy order API."""

    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    # The secret in the status URL; compared in constant time.
    token = models.CharField(max_length=64, unique=True, editable=False)
    idempotency_key = models.CharField(max_length=255, unique=True, editable=False)
    # HMAC of the request body: a replay with another body is refused.
    fingerprint = models.CharField(max_length=64, editable=False)
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="hot_orders")
    quantity = models.PositiveSmallIntegerField()
    unit_price_cents = models.PositiveIntegerField()
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField()  # found by its folded form: hot_order_email_folded
    # Only the worker needs the card number: sealed with Fernet (orders.cards), never stored in
    # the clear, and wiped as soon as the order is final.
    card_sealed = models.TextField(blank=True, editable=False)
    card_last4 = models.CharField(max_length=4, editable=False)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PROCESSING)
    stage = models.CharField(max_length=24, choices=OrderStage.choices, default=OrderStage.QUEUED, db_index=True)
    reservation = models.CharField(max_length=16, choices=Reservation.choices, default=Reservation.HELD)
    reserved_until = models.DateTimeField(help_text="A held reservation is released after this.")
    legacy_order_id = models.PositiveBigIntegerField(null=True, blank=True)
    legacy_number = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The worker placing the order and until when, on the database's clock: a second delivery
    # of its message waits for the claim instead of sending the order again.
    claimed_by = models.CharField(max_length=100, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "hot order"
        indexes = [
            models.Index(fields=["status", "reservation", "reserved_until"], name="hot_order_expiry"),
            # The reservation sweep asks whether the workers made progress lately.
            models.Index(fields=["updated_at"], name="hot_order_updated"),
            # Orders that became final in a minute: the live queue view and the sale dashboard.
            models.Index(fields=["completed_at"], name="hot_order_completed", condition=Q(completed_at__isnull=False)),
            # A mailbox's orders (shop.order_finders.with_email): My orders, Find an order, links.
            email_folded_index("customer_email", name="hot_order_email_folded"),
            # An order named by the legacy API's number (earlier releases' emails carry it).
            models.Index(fields=["legacy_number"], name="hot_order_legacy_number", condition=~Q(legacy_number="")),
        ]

    def __str__(self) -> str:
        return self.number or f"order {self.pk}"

    @property
    def reference(self) -> str:
        """The legacy API's idempotency key for this order, derived from the buyer's key as the
        monolith derives it."""
        return reference_for_key(self.idempotency_key)

    @property
    def is_final(self) -> bool:
        return self.status in (OrderStatus.COMPLETE, OrderStatus.FAILED)

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @property
    def card_masked(self) -> str:
        return f"•••• {self.card_last4}"


class OrderStageEvent(models.Model):
    order = models.ForeignKey(HotOrder, on_delete=models.CASCADE, related_name="history")
    stage = models.CharField(max_length=24, choices=OrderStage.choices)
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.order}: {self.get_stage_display()}"


class OutboxMessage(models.Model):
    """A task message that must reach the broker: kept until publishing is confirmed, so the
    sweeper delivers what a crash between commit and publish would have lost."""

    order = models.OneToOneField(HotOrder, on_delete=models.CASCADE, related_name="outbox")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The buyer's trace (tracing.context.current_carrier), so that the relay's publish and the
    # worker's task join it: {} when the request was not traced.
    trace_context = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"outbox for {self.order}"


class OrderNumberCounter(models.Model):
    """The order-number counter on databases without sequences (PostgreSQL uses one)."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class LegacySlot(models.Model):
    """One of LEGACY_CAPACITY permits to call the legacy API, shared by every worker process.

    A permit is leased, so one held by a worker that died frees itself.
    """

    number = models.PositiveSmallIntegerField(primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"slot {self.number}"


class DeadLetter(models.Model):
    """An order whose retries ran out: a merchant looks at it and redrives it, or cancels it.

    `redriven_at` and `redriven_by` say when and by whom it was settled (an open letter has
    neither), as for the log's dead letters: by a redrive, or as `resolution` says."""

    order = models.ForeignKey(HotOrder, on_delete=models.CASCADE, related_name="dead_letters")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    redriven_at = models.DateTimeField(null=True, blank=True)
    redriven_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # How it was settled when not by a redrive: cancelled, or placed after all (the legacy API
    # had the order when the merchant cancelled it).
    # db_default: the release before the column, still running during a rolling deploy, inserts too.
    resolution = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"dead letter of {self.order}"
