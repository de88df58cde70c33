"""The catalogue (categories, products with price, picture and stock) and the basket."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from shop.addresses import address_lines
from shop.catalogue_version import VersionedQuerySet
from shop.db_functions import email_folded_index
from shop.picture_upload import picture_validate

# At or below this many left, the shop says "only N left".
LOW_STOCK = 5


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the shop's navigation.")

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", kwargs={"category": self.slug})


class Supplier(models.Model):
    """Who a product is bought from: where a draft purchase order goes when stock runs low."""

    name = models.CharField(max_length=200, unique=True)
    email = models.EmailField()
    lead_time_days = models.PositiveSmallIntegerField(default=7, help_text="Days from order to delivery.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductQuerySet(VersionedQuerySet):
    # Stock moves with every order and no cache keeps it: it leaves the cache version be.
    counter_fields = frozenset({"stock", "held", "updated_at"})

    def on_sale(self):
        """Products a shopper may see and buy: active, not deleted."""
        return self.filter(is_active=True, deleted_at__isnull=True)


# The most one unit may cost: what the order backend totals an order up to (the legacy API's
# MAX_ORDER_TOTAL_CENTS). A dearer product could never be ordered, whatever its page said.
MAX_PRICE_CENTS = 2_147_483_647


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    price_cents = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_PRICE_CENTS)])
    picture = models.FileField(
        upload_to="products/",
        blank=True,
        validators=[FileExtensionValidator(["png", "jpg", "jpeg", "webp", "svg"]), picture_validate],
    )
    # Stock of record is owned by the legacy order API; the storefront only reads it.
    stock = models.PositiveIntegerField(default=0)
    # Units reserved by open holds in the stock of record; never more than what is on hand.
    held = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True, db_index=True)
    is_featured = models.BooleanField(default=False, help_text="Shown on the shop's home page.")
    supplier = models.ForeignKey(Supplier, null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    reorder_point = models.PositiveIntegerField(
        default=0,
        blank=True,
        help_text="When available stock falls below this, a draft purchase order is made (0: never).",
    )
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["category__position", "title"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(
                condition=models.Q(held__gte=0, held__lte=models.F("stock")), name="product_held_within_stock"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("shop:product", kwargs={"category": self.category.slug, "product": self.slug})

    @property
    def price(self) -> Decimal:
        return Decimal(self.price_cents) / 100

    @property
    def available(self) -> int:
        """Units an ordinary shopper may still buy: on hand less what open holds keep."""
        return max(self.stock - self.held, 0)

    @property
    def stock_state(self) -> str:
        """sold_out, low or in_stock: what the shopper's badge says."""
        if self.available <= 0:
            return "sold_out"
        if self.available <= LOW_STOCK:
            return "low"
        return "in_stock"

    @property
    def is_on_sale(self) -> bool:
        return self.is_active and self.deleted_at is None

    def soft_delete(self) -> None:
        self.deleted_at = timezone.now()
        self.is_active = False
        self.save(update_fields=["deleted_at", "is_active", "updated_at"])

    soft_delete.alters_data = True


class Basket(models.Model):
    """An open basket: one per session for anonymous shoppers, one per signed-in user."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="basket"
    )
    session_key = models.CharField(max_length=40, null=True, blank=True, unique=True)
    # Set when, on sign-in, this guest's basket joined the account's (and was emptied): an order
    # being placed from it meanwhile takes its lines from where they went
    # (shop.services.basket_take_placed). A basket with it set is nobody's open basket.
    # No database constraint, and its index partial (shop 0017, built without blocking): added to
    # a table of every guest's basket, either would hold its writes while it was built. Django
    # clears it (SET_NULL) when the account's basket is deleted.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False, db_index=False
    )
    # What the merge did to that basket's lines, by product slug: {"had": the account's own
    # units before it, "added": what it added (less than this basket held where the stock or the
    # line's limit capped it)}. An order placed from this one takes no more than was added there,
    # and never into what the account had.
    merged_lines = models.JSONField(default=dict, blank=True, db_default=models.Value({}, models.JSONField()))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The hourly prune's look for guests' baskets no session reaches (shop.housekeeping).
        indexes = [
            models.Index(fields=["updated_at"], name="basket_guest_updated", condition=models.Q(owner__isnull=True)),
            models.Index(
                fields=["merged_into"], name="basket_merged_into", condition=models.Q(merged_into__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"Basket {self.pk}"


class BasketLine(models.Model):
    basket = models.ForeignKey(Basket, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["basket", "product"], name="basket_line_unique_product")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"


class PlacedOrder(models.Model):
    """The storefront's receipt of an order placed with the legacy API (the order of record
    lives there; this row lets a customer find it again and never someone else's)."""

    number = models.CharField(max_length=32, unique=True)
    legacy_id = models.PositiveBigIntegerField(unique=True)
    reference = models.CharField(max_length=64, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="placed_orders"
    )
    email = models.EmailField()
    name = models.CharField(max_length=200)
    # Where to deliver: the legacy API's order contract has no address, so the storefront keeps it.
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(
        "state, province or county",
        max_length=100,
        blank=True,
        help_text="A code (MN, QC, NSW) where the post uses one.",
    )
    postcode = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=100, blank=True)
    total_cents = models.PositiveIntegerField()
    # The card's last four digits, as the legacy API answered: the order lookup asks for them,
    # so a number and an email are not enough. Blank on receipts recorded before.
    card_last4 = models.CharField(max_length=4, blank=True, editable=False)
    processing_ms = models.PositiveIntegerField(help_text="How long the legacy API took to place it.")
    placed_at = models.DateTimeField(default=timezone.now)
    # HMAC of the buy-now request that placed it (shop.order_input): the same Idempotency-Key
    # with another body is refused instead of being shown this order.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # False while a receipt the sweep recorded (shop.checkout_sweep) has answered no request: the
    # first request of its own body to ask is then answered as the original (a buy-now's access).
    answered = models.BooleanField(default=True, db_default=True, editable=False)
    # Whether its lines were taken out of the buyer's basket: False from its recording until the
    # first request answered with it takes them, in one transaction with this mark
    # (shop.services.basket_take_placed), whichever it is (the submit that placed it, a retry,
    # the page that waits on a checkout sent twice); so never twice, and not lost with a process
    # that died in between. None on receipts recorded before it was kept: taken by each answer.
    lines_taken = models.BooleanField(null=True, blank=True, editable=False)
    # When its confirmation email was written with it (OrderEmail, which sends it): the
    # release before claimed the email here, so that its replays send none.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            # A guest's orders are found by their folded address (shop.order_finders.with_email).
            email_folded_index("email", name="placed_order_email_folded"),
            # The admin's list, newest first (its ties by id), and its dates.
            models.Index(fields=["placed_at", "id"], name="placed_order_placed"),
        ]

    def __str__(self) -> str:
        return self.number

    def address_lines(self) -> list[str]:
        """The delivery address under the name, in the order the country's post reads it."""
        return address_lines(
            address_line=self.address_line,
            city=self.city,
            region=self.region,
            postcode=self.postcode,
            country=self.country,
        )


class VerifiedEmail(models.Model):
    """An address an account proved it reads, by opening the link emailed there. Orders found
    by email (the sale's, guests') are shown to an account only for its verified address."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verified_emails")
    email = models.EmailField(help_text="The address's key (shop.order_input.email_key), as it is compared.")
    verified_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "email"], name="verified_email_unique_per_user")]

    def __str__(self) -> str:
        return self.email


class PendingCheckout(models.Model):
    """A checkout sent to the legacy API that no answer has settled yet: written before the call
    (shop.checkout_pending), deleted with its receipt or a definite no. One left behind, its
    answer lost and its buyer gone (a timeout, a process killed mid-call), is looked up by the
    sweep (shop.checkout_sweep): an order it placed is recorded and confirmed, never lost.
    Never card data beyond the last four digits, as on a receipt."""

    reference = models.CharField(max_length=64, unique=True)
    # Each body sent under the reference (the buyer's account, delivery, lines, the card's last
    # four digits, a buy-now's fingerprint): the order found is recorded with the one it matches.
    tries = models.JSONField(default=list)
    # Tries out, or whose answer left them in doubt: a definite no for one try settles nothing
    # while another is open (shop.checkout_pending).
    tries_open = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    # Not looked up before then: every try moves it on, so a call still on its way to the legacy
    # API is never taken for a checkout that placed nothing.
    look_after = models.DateTimeField()
    looks = models.PositiveIntegerField(default=0, help_text="Lookups that could not tell yet.")

    class Meta:
        indexes = [models.Index(fields=["look_after"], name="pending_checkout_look_after")]

    def __str__(self) -> str:
        return self.reference


class BuyNowRefusal(models.Model):
    """A buy-now Idempotency-Key's first answer when it was a definite no (a declined card): given
    again to the same body, and 422 to any other, as the hot path binds a key to its declined
    order. A sold-out answer binds nothing: the same key may order once units come back."""

    reference = models.CharField(max_length=64, unique=True)
    # The body's (shop.fingerprints); blank once dropped (below), when the refusal answers every body.
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # A refusal kept from before fingerprints left out the card holds no body to recompute one from:
    # its card-wide fingerprint waits here, matched (and renewed) for a replay of its key until the
    # hourly prune drops it (shop.housekeeping), never the card's digits in a form kept for good.
    fingerprint_before = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)
    detail = models.CharField(max_length=200)
    refused_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.reference


class OrderEmail(models.Model):
    """The email telling a buyer how their order ended (confirmed, or not placed after its 202),
    written in the transaction that ends it (a storefront receipt, a hot order's last change)
    and sent after it commits (shop.emails): a mail server that is down, or a process killed
    between the commit and the send, leaves it here for the sweep to send, not lost
    (shop.confirmations). Sent rows, and those given up, are kept `SHOP_CONFIRMATION_KEEP_DAYS`."""

    class Kind(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        NOT_PLACED = "not_placed", "Not placed"

    number = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CONFIRMED)
    # The legacy API's order this email confirms, where one was placed: one buyer's key that
    # reached both origins at once is one legacy order, recorded on each side under its own
    # number, and confirmed once, by whichever side recorded it first.
    legacy_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Set on an order's confirmation that the other origin's email already gave (its number):
    # written as sent, and never sent itself, so the order still counts as confirmed here (a
    # "not placed" email of this number is not sent after it).
    covered_by = models.CharField(max_length=32, blank=True, default="", db_default="")
    reason = models.CharField(max_length=300, blank=True)
    name = models.CharField(max_length=200)
    email = models.EmailField()
    lines = models.JSONField(default=list, help_text="[title, quantity] for each line.")
    total_cents = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    # Held by the process sending it (a dead one's hold ends), and after a failed attempt the
    # time it is tried again: the sweep takes only rows whose hold has ended.
    held_until = models.DateTimeField(null=True, blank=True)
    held_by = models.CharField(max_length=16, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # One of each per order: a hot order failed and then found placed after all (the legacy
        # API had it) is told both, in that order.
        constraints = [
            models.UniqueConstraint(fields=["number", "kind"], name="order_email_once_per_kind"),
            models.UniqueConstraint(
                fields=["legacy_id", "kind"],
                name="order_email_once_per_legacy_order",
                condition=models.Q(legacy_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="order_email_unsent", condition=models.Q(sent_at__isnull=True)),
            models.Index(fields=["sent_at"], name="order_email_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_kind_display().lower()})"
