"""Reads for the storefront: catalogue, baskets and placed orders, as the pages need them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from shop.models import Basket, BasketLine, Category, OrderEmail, PlacedOrder, Product

# Session keys: the anonymous shopper's basket, and the orders this session may see.
SESSION_BASKET = "shop_basket_id"
SESSION_ORDERS = "shop_orders"


def category_list_for_nav() -> QuerySet[Category]:
    """Categories with at least one product a shopper can see, in navigation order."""
    return (
        Category.objects.annotate(
            n_on_sale=Count("products", filter=Q(products__is_active=True, products__deleted_at__isnull=True))
        )
        .filter(n_on_sale__gt=0)
        .order_by("position", "name")
    )  # Meta.ordering is dropped when grouping


def category_get(*, slug: str) -> Category:
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        raise Http404("No such category.")
    return category


def product_list(*, category: Category | None = None, sort: str = "") -> QuerySet[Product]:
    products = Product.objects.on_sale().select_related("category")
    if category is not None:
        products = products.filter(category=category)
    ordering = {"price": ["price_cents", "title"], "-price": ["-price_cents", "title"], "title": ["title"]}
    return products.order_by(*ordering[sort]) if sort in ordering else products


def product_list_featured(*, limit: int = 8) -> list[Product]:
    """Featured products first, then the rest of the catalogue to fill the shelf."""
    products = Product.objects.on_sale().select_related("category")
    featured = list(products.filter(is_featured=True)[:limit])
    if len(featured) < limit:
        in_stock = products.exclude(pk__in=[p.pk for p in featured]).filter(stock__gt=F("held"))
        featured += list(in_stock[: limit - len(featured)])
    return featured


def product_get_on_sale(*, category_slug: str, product_slug: str) -> Product:
    """The product page's product; inactive, deleted or misfiled products are not found."""
    product = (
        Product.objects.on_sale()
        .select_related("category")
        .filter(slug=product_slug, category__slug=category_slug)
        .first()
    )
    if product is None:
        raise Http404("No such product.")
    return product


# --- Baskets ----------------------------------------------------------------------------


def basket_get_for_request(request: HttpRequest) -> Basket | None:
    """The shopper's open basket, without creating one: the user's, or this session's."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Basket.objects.filter(owner=user).first()
    basket_id = request.session.get(SESSION_BASKET)
    if not basket_id:
        return None
    # The id lives in server-side session data, so a shopper cannot point it elsewhere;
    # the owner check keeps a signed-in customer's basket out of reach all the same.
    # One that joined an account's on sign-in is nobody's open basket any more.
    return Basket.objects.filter(pk=basket_id, owner__isnull=True, merged_into__isnull=True).first()


@dataclass
class BasketLineView:
    product: Product
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.product.price_cents * self.quantity

    @property
    def available(self) -> bool:
        return self.product.is_on_sale and self.quantity <= self.product.available


def basket_signature(lines: Iterable[tuple[str, int, int]]) -> str:
    """What a basket's page showed, as (product, quantity, unit price) lines: the checkout sends
    it back, and an order is placed only for the basket the buyer saw (shop.checkouts)."""
    shown = json.dumps(sorted(lines), separators=(",", ":"))
    return hashlib.sha256(shown.encode()).hexdigest()[:32]


@dataclass
class BasketView:
    lines: list[BasketLineView] = field(default_factory=list)

    @property
    def signature(self) -> str:
        return basket_signature((line.product.slug, line.quantity, line.product.price_cents) for line in self.lines)

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def problems(self) -> list[BasketLineView]:
        return [line for line in self.lines if not line.available]

    def as_json(self) -> dict:
        return {
            "lines": [
                {
                    "product": line.product.slug,
                    "title": line.product.title,
                    "quantity": line.quantity,
                    "unit_price_cents": line.product.price_cents,
                    "total_cents": line.total_cents,
                    # What the shopper may buy: units held for a sale are not on offer here.
                    "stock": line.product.available,
                    "url": line.product.get_absolute_url(),
                }
                for line in self.lines
            ],
            "count": self.count,
            "total_cents": self.total_cents,
        }


def basket_view(*, basket: Basket | None) -> BasketView:
    if basket is None:
        return BasketView()
    lines = BasketLine.objects.filter(basket=basket).select_related("product__category").order_by("pk")
    return BasketView(lines=[BasketLineView(product=line.product, quantity=line.quantity) for line in lines])


def basket_count(*, basket: Basket | None) -> int:
    if basket is None:
        return 0
    return sum(BasketLine.objects.filter(basket=basket).values_list("quantity", flat=True))


# --- Placed orders ----------------------------------------------------------------------


def placed_order_get_for_request(*, request: HttpRequest, number: str) -> PlacedOrder:
    """The order if this visitor may see it: its signed-in owner, or a session that placed
    or looked it up. Anyone else gets the same 404 as for a number that does not exist."""
    order = PlacedOrder.objects.filter(number=number).first()
    if order is None:
        raise Http404("No such order.")
    user = request.user
    if user.is_authenticated and order.customer_id == user.pk:
        return order
    if number in request.session.get(SESSION_ORDERS, []):
        return order
    raise Http404("No such order.")


def placed_order_list_for_customer(*, user) -> QuerySet[PlacedOrder]:
    return PlacedOrder.objects.filter(customer=user).order_by("-placed_at")


@dataclass
class OrderLineView:
    title: str
    quantity: int
    unit_price_cents: int | None
    total_cents: int | None
    product: Product | None = None


@dataclass
class OrderDetails:
    """What the order of record says, read from the legacy API; `available` is False
    when it could not be asked, and the page then shows the receipt alone."""

    available: bool
    status: str = ""
    lines: list[OrderLineView] = field(default_factory=list)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# How recent an order a submit on an emptied basket is told of (placed_order_just_now).
JUST_PLACED = timedelta(minutes=10)


def placed_order_just_now(request: HttpRequest) -> PlacedOrder | None:
    """The order this session was last given, if placed in the last few minutes: what a submit
    from another tab finds the basket emptied by."""
    numbers = request.session.get(SESSION_ORDERS, [])
    if not numbers:
        return None
    return PlacedOrder.objects.filter(number=numbers[-1], placed_at__gte=timezone.now() - JUST_PLACED).first()


def placed_order_confirmation_state(*, order: PlacedOrder) -> str:
    """Where the order's confirmation email stands: "waiting" (to be sent, or tried again),
    "given_up", or "sent" (sent, told by another's email, or long since cleared away)."""
    unsent = OrderEmail.objects.filter(number=order.number, kind=OrderEmail.Kind.CONFIRMED, sent_at__isnull=True)
    attempts = unsent.values_list("attempts", flat=True).first()
    if attempts is None:
        return "sent"
    return "given_up" if attempts >= settings.SHOP_CONFIRMATION_MAX_ATTEMPTS else "waiting"


def placed_order_details(*, order: PlacedOrder) -> OrderDetails:
    """The order's lines as the legacy API's order serializer gives them (`product` is the slug,
    `unit_price_cents`, `line_total_cents`)."""
    import legacy_client

    answer = legacy_client.order_get(order_id=order.legacy_id)
    if answer is None:
        return OrderDetails(available=False)
    data = answer.data
    raw_lines = [line for line in data.get("lines") or [] if isinstance(line, dict)]
    slugs = [str(line.get("product") or "") for line in raw_lines]
    products = {p.slug: p for p in Product.objects.filter(slug__in=slugs).select_related("category")}
    lines = []
    for slug, line in zip(slugs, raw_lines, strict=True):
        product = products.get(slug)
        quantity = _int_or_none(line.get("quantity")) or 0
        unit = _int_or_none(line.get("unit_price_cents"))
        if unit is None and product is not None:
            unit = product.price_cents
        total = _int_or_none(line.get("line_total_cents"))
        if total is None and unit is not None:
            total = unit * quantity
        title = line.get("title") or (product.title if product else slug)
        lines.append(
            OrderLineView(title=title, quantity=quantity, unit_price_cents=unit, total_cents=total, product=product)
        )
    # In the buyer's words, as My orders says them (shop.order_finders): a placed order is complete.
    status = {"placed": "complete", "pending": "processing"}.get(str(data.get("status") or ""), "")
    return OrderDetails(available=True, status=status, lines=lines)
