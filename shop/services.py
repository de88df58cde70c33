"""Writes for the storefront: basket changes, the basket merge on sign-in, and checkout.

Services take plain data and raise the domain exceptions below; views turn those into
pages or JSON errors. The order itself is placed with the legacy order API over HTTP.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

import legacy_client
from legacy_client import Outcome
from shop.checkout_events import checkout_placed_append, checkout_refused_append
from shop.emails import placed_order_confirm
from shop.models import Basket, BasketLine, PlacedOrder, Product
from shop.selectors import SESSION_BASKET, basket_get_for_request

# The most of one product a basket line may hold, whatever the stock.
MAX_LINE_QUANTITY = 99
# The checkout's idempotency reference, kept in the session until the order is settled.
SESSION_CHECKOUT_REFERENCE = "shop_checkout_reference"
# Who minted it: the account's pk, or None for a guest (login() keeps a guest's session data).
SESSION_CHECKOUT_STARTED_BY = "shop_checkout_started_by"


class BasketError(Exception):
    """A basket change that cannot be made; nothing was written."""


class InvalidQuantity(BasketError):
    pass


class ProductUnavailable(BasketError):
    pass


class InsufficientStock(BasketError):
    def __init__(self, *, product: Product, requested: int):
        self.product = product
        self.requested = requested
        self.available = product.available
        if product.available <= 0:
            message = f"{product.title} is sold out."
        else:
            message = f"Only {product.available} of {product.title} left; your basket would hold {requested}."
        super().__init__(message)


# --- Baskets ----------------------------------------------------------------------------


def _lock_basket(basket: Basket) -> None:
    # Two requests changing one basket queue here, so neither overwrites the other's line.
    Basket.objects.select_for_update().filter(pk=basket.pk).first()


def _check_line(*, product: Product, quantity: int) -> None:
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    if quantity > MAX_LINE_QUANTITY:
        raise InvalidQuantity(f"At most {MAX_LINE_QUANTITY} of one product per order.")
    if not product.is_on_sale:
        raise ProductUnavailable(f"{product.title} is no longer on sale.")
    # What a sale's hold keeps is not for ordinary shoppers: only what is available.
    if quantity > product.available:
        raise InsufficientStock(product=product, requested=quantity)


@transaction.atomic
def basket_add(*, basket: Basket, product: Product, quantity: int) -> BasketLine:
    """Adds `quantity` to the basket's line for `product`; the line may not exceed stock."""
    if quantity < 1:
        raise InvalidQuantity("Quantity must be at least 1.")
    _lock_basket(basket)
    product.refresh_from_db(fields=["stock", "held", "is_active", "deleted_at"])
    line = BasketLine.objects.filter(basket=basket, product=product).first()
    new_quantity = (line.quantity if line else 0) + quantity
    _check_line(product=product, quantity=new_quantity)
    if line is None:
        line = BasketLine.objects.create(basket=basket, product=product, quantity=new_quantity)
    else:
        line.quantity = new_quantity
        line.save(update_fields=["quantity"])
    Basket.objects.filter(pk=basket.pk).update(updated_at=timezone.now())
    return line


@transaction.atomic
def basket_set_quantity(*, basket: Basket, product: Product, quantity: int) -> BasketLine | None:
    """Sets the line to exactly `quantity`; 0 removes it."""
    if quantity == 0:
        basket_remove(basket=basket, product=product)
        return None
    _lock_basket(basket)
    product.refresh_from_db(fields=["stock", "held", "is_active", "deleted_at"])
    _check_line(product=product, quantity=quantity)
    line, _ = BasketLine.objects.update_or_create(basket=basket, product=product, defaults={"quantity": quantity})
    return line


@transaction.atomic
def basket_remove(*, basket: Basket, product: Product) -> bool:
    _lock_basket(basket)
    deleted, _ = BasketLine.objects.filter(basket=basket, product=product).delete()
    return deleted > 0


def basket_clear(*, basket: Basket) -> None:
    BasketLine.objects.filter(basket=basket).delete()


def basket_get_or_create_for_request(request: HttpRequest) -> Basket:
    """The shopper's basket, created if needed. Call inside the transaction that fills it,
    so a change that fails leaves no empty basket behind; then `basket_remember`."""
    basket = basket_get_for_request(request)
    if basket is not None:
        return basket
    if request.user.is_authenticated:
        try:
            with transaction.atomic():
                return Basket.objects.create(owner=request.user)
        except IntegrityError:  # created by a concurrent request of the same customer
            return Basket.objects.get(owner=request.user)
    return Basket.objects.create()


def basket_remember(request: HttpRequest, basket: Basket) -> None:
    """Ties an anonymous basket to the session once something was put in it."""
    if request.user.is_authenticated or request.session.get(SESSION_BASKET) == basket.pk:
        return
    if not request.session.session_key:
        request.session.save()
    request.session[SESSION_BASKET] = basket.pk
    Basket.objects.filter(pk=basket.pk).update(session_key=request.session.session_key)


@transaction.atomic
def basket_merge_into_user(*, basket: Basket | None, user: AbstractBaseUser) -> Basket | None:
    """On sign-in, the anonymous basket joins the customer's own. Quantities add up, but
    never past stock or the per-line limit; products no longer on sale are dropped."""
    if basket is None or basket.owner_id is not None:
        return basket
    target = Basket.objects.select_for_update().filter(owner=user).first()
    if target is None:
        basket.owner = user
        basket.session_key = None
        basket.save(update_fields=["owner", "session_key", "updated_at"])
        return basket
    for line in BasketLine.objects.filter(basket=basket).select_related("product"):
        product = line.product
        if not product.is_on_sale or product.available <= 0:
            continue
        existing = BasketLine.objects.filter(basket=target, product=product).first()
        quantity = min((existing.quantity if existing else 0) + line.quantity, product.available, MAX_LINE_QUANTITY)
        BasketLine.objects.update_or_create(basket=target, product=product, defaults={"quantity": quantity})
    basket.delete()
    return target


# --- Checkout ---------------------------------------------------------------------------


class CheckoutError(Exception):
    """The order was not placed; the basket is kept. `status` is the page's HTTP status."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class CheckoutEmpty(CheckoutError):
    code = "empty"


class CheckoutDeclined(CheckoutError):
    status = 402
    code = "card_declined"


class CheckoutOutOfStock(CheckoutError):
    status = 409
    code = "out_of_stock"


class CheckoutReferenceReused(CheckoutError):
    status = 409
    code = "reference_reused"


class CheckoutPlacedEarlier(Exception):
    """An earlier try of this checkout placed the order after all (its answer was lost: a
    timeout), and the buyer changed the card or the basket since, so the legacy API refused the
    reference for the new body. That order is the checkout's: no second one is placed."""

    def __init__(self, order: PlacedOrder, *, theirs: bool, basket_kept: bool):
        super().__init__(order.number)
        self.order = order
        # The buyer who started the checkout checks out now: the order is theirs to be shown.
        self.theirs = theirs
        self.basket_kept = basket_kept  # the basket holds more than that order took from it


class CheckoutUnavailable(CheckoutError):
    """The order service is down or over capacity: nothing is known to be placed, and the
    same reference is sent again on the next try, so a retry cannot place it twice."""

    status = 503
    code = "unavailable"


@dataclass(frozen=True)
class Delivery:
    name: str
    email: str
    address_line: str
    city: str
    postcode: str
    country: str
    # State, province or county, as the country writes it (shop.addresses); none for many.
    region: str = ""


def checkout_reference(request: HttpRequest) -> str:
    """The reference of this checkout: the same one for every submit until it is settled."""
    reference = request.session.get(SESSION_CHECKOUT_REFERENCE)
    if not reference:
        reference = str(uuid.uuid4())
        request.session[SESSION_CHECKOUT_REFERENCE] = reference
        request.session[SESSION_CHECKOUT_STARTED_BY] = _buyer_id(request)
        # Saved now, before the order service is called: the session middleware does not
        # save on a 5xx answer, and a timeout is exactly when the same reference must be sent again.
        request.session.save()
    return reference


def checkout_reference_forget(request: HttpRequest) -> None:
    """After a definite answer (placed, declined, no stock) the next attempt is a new order."""
    request.session.pop(SESSION_CHECKOUT_REFERENCE, None)
    request.session.pop(SESSION_CHECKOUT_STARTED_BY, None)


def checkout_reference_is_buyers(request: HttpRequest) -> bool:
    """Whether whoever checks out now started this checkout's reference: not so once a guest's
    browser was signed in to an account, whose holder may be someone else."""
    return request.session.get(SESSION_CHECKOUT_STARTED_BY) == _buyer_id(request)


def _buyer_id(request: HttpRequest) -> int | None:
    return request.user.pk if request.user.is_authenticated else None


def _out_of_stock_message(data: dict) -> str:
    product = data.get("product") or (data.get("fields") or {}).get("product")
    if isinstance(product, list):
        product = ", ".join(str(p) for p in product)
    title = None
    if isinstance(product, str):
        title = Product.objects.filter(slug=product).values_list("title", flat=True).first() or product
    if title:
        return f"Sorry, {title} sold out before we could place your order. Please change your basket."
    return "Sorry, part of your basket sold out before we could place your order. Please change your basket."


def checkout_place(
    *,
    basket: Basket,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    reference: str,
    started_by_buyer: bool = True,
) -> PlacedOrder:
    """Places the basket's order with the legacy API and records the receipt.

    No database transaction is held during the HTTP call: the order service writes stock
    in its own transaction and may take seconds under load. `started_by_buyer` says whether
    whoever checks out now started the reference (checkout_reference_is_buyers): an order an
    earlier try placed under it is theirs only then.
    """
    lines = list(BasketLine.objects.filter(basket=basket).select_related("product").order_by("pk"))
    if not lines:
        raise CheckoutEmpty("Your basket is empty.")
    gone = [line.product.title for line in lines if not line.product.is_on_sale]
    if gone:
        raise CheckoutOutOfStock(f"No longer on sale: {', '.join(gone)}. Please remove it from your basket.")
    ordered = [{"product": line.product.slug, "quantity": line.quantity} for line in lines]
    try:
        order = _order_place(
            reference=reference,
            lines=ordered,
            customer=customer,
            delivery=delivery,
            card_number=card_number,
            reused_is_final=False,
        )
    except CheckoutReferenceReused:
        order, earlier_lines = _earlier_try_placed(
            reference=reference, lines=ordered, customer=customer if started_by_buyer else None, delivery=delivery
        )
        basket_kept = True
        if started_by_buyer:
            basket_kept = basket_take_ordered(basket=basket, lines=earlier_lines)
        raise CheckoutPlacedEarlier(order, theirs=started_by_buyer, basket_kept=basket_kept) from None
    basket_clear(basket=basket)
    # Once, whichever of two quick submits gets here first (the receipt is claimed).
    placed_order_confirm(order=order, lines=[(line.product.title, line.quantity) for line in lines])
    return order


def _earlier_try_placed(
    *, reference: str, lines: list[dict], customer: AbstractBaseUser | None, delivery: Delivery
) -> tuple[PlacedOrder, list[dict]]:
    """The order an earlier try under `reference` placed, whose answer was lost, with its lines,
    recorded (for `customer`) and confirmed as that try would have done: asked of the legacy API
    once it refused the reference for another body (`lines`, this try's). Raises
    CheckoutReferenceReused when it holds no order under it (a try that died there was dropped,
    its card voided) or will not say, and CheckoutUnavailable while it cannot tell yet; each
    logged as this try's refusal."""
    answer = legacy_client.order_find(reference=reference, caller="storefront")
    data = answer.data
    if answer.retryable:
        checkout_refused_append(reference=reference, lines=lines, outcome=str(answer.outcome), retryable=True)
        raise CheckoutUnavailable(
            "Our order service could not tell yet whether your earlier try went through. Please try again "
            "in a moment: you will not be charged twice."
        )
    if answer.outcome != Outcome.PLACED or not data.get("number") or data.get("id") is None:
        checkout_refused_append(
            reference=reference, lines=lines, outcome=str(Outcome.REFERENCE_REUSED), retryable=False
        )
        if answer.outcome == Outcome.NOT_FOUND:
            raise CheckoutReferenceReused("Your basket changed since you last tried to order. Please order again.")
        raise CheckoutReferenceReused(
            "We could not confirm whether your earlier try went through: please look for its confirmation "
            "email before you order again."
        )
    placed_lines = [line for line in data.get("lines") or [] if isinstance(line, dict)]
    earlier = [
        {"product": str(line.get("product")), "quantity": int(line.get("quantity") or 0)} for line in placed_lines
    ]
    # The order is the earlier try's, with its name and email; the address is only this one's.
    ordered_by = data.get("customer") or {}
    delivery = replace(
        delivery, name=ordered_by.get("name") or delivery.name, email=ordered_by.get("email") or delivery.email
    )
    order = placed_order_record(
        reference=reference,
        legacy=data,
        customer=customer,
        delivery=delivery,
        processing_ms=int(data.get("processing_ms") or 0),
        lines=earlier,
    )
    titles = [(str(line.get("title") or line.get("product")), int(line.get("quantity") or 0)) for line in placed_lines]
    placed_order_confirm(order=order, lines=titles)
    return order, earlier


def basket_take_ordered(*, basket: Basket, lines: list[dict]) -> bool:
    """Takes an order's lines out of the basket, unit for unit (what was added since stays), and
    says whether anything is left in it."""
    with transaction.atomic():
        held = {
            line.product.slug: line
            for line in BasketLine.objects.select_for_update().filter(basket=basket).select_related("product")
        }
        for ordered in lines:
            line = held.get(ordered["product"])
            if line is None:
                continue
            if line.quantity <= ordered["quantity"]:
                line.delete()
                del held[ordered["product"]]
            else:
                BasketLine.objects.filter(pk=line.pk).update(quantity=line.quantity - ordered["quantity"])
        return bool(held)


def checkout_buy_now(
    *,
    product: Product,
    quantity: int,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    reference: str,
) -> PlacedOrder:
    """Places a one-product order at once, without a basket (the monolith's buy-now)."""
    if quantity > product.available:
        raise CheckoutOutOfStock(_out_of_stock_message({"product": product.slug}))
    return _order_place(
        reference=reference,
        lines=[{"product": product.slug, "quantity": quantity}],
        customer=customer,
        delivery=delivery,
        card_number=card_number,
    )


def _order_place(
    *,
    reference: str,
    lines: list[dict],
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    reused_is_final: bool = True,
) -> PlacedOrder:
    """Places the order with the legacy API over HTTP and records the receipt, or raises a
    CheckoutError saying why not. A reference refused as reused is logged as a refusal only
    when that is final (`reused_is_final`): a checkout asks first whether an earlier try of its
    own placed it (_earlier_try_placed), and logs what that tells."""
    started = time.perf_counter()
    answer = legacy_client.order_place(
        reference=reference,
        name=delivery.name,
        email=delivery.email,
        lines=lines,
        card_number=card_number,
    )
    processing_ms = round((time.perf_counter() - started) * 1000)
    data = answer.data
    if answer.outcome != Outcome.PLACED and (reused_is_final or answer.outcome != Outcome.REFERENCE_REUSED):
        checkout_refused_append(
            reference=reference, lines=lines, outcome=str(answer.outcome), retryable=answer.retryable
        )
    match answer.outcome:
        case Outcome.DECLINED:
            raise CheckoutDeclined("Your card was declined. Please check the number or use another card.")
        case Outcome.OUT_OF_STOCK:
            raise CheckoutOutOfStock(_out_of_stock_message(data))
        case Outcome.INVALID:
            raise CheckoutError("The order service could not accept these details.", fields=answer.fields)
        case Outcome.REFERENCE_REUSED:
            # This checkout's reference went out with another basket (changed after a try that
            # timed out): a definite no, so the next submit is a new order under a new reference.
            raise CheckoutReferenceReused("Your basket changed since you last tried to order. Please order again.")
        case Outcome.BUSY | Outcome.IN_PROGRESS | Outcome.NOT_SENT | Outcome.UNKNOWN:
            wait = (
                f" Please try again in {int(answer.retry_after)} seconds."
                if answer.retry_after
                else " Please try again."
            )
            raise CheckoutUnavailable(
                "Our order service is very busy right now and could not take your order."
                + wait
                + " Your basket is kept, and you will not be charged twice."
            )
    if answer.outcome != Outcome.PLACED or not data.get("number") or data.get("id") is None:
        raise CheckoutUnavailable("Our order service gave an unexpected answer. Please try again.")
    order = placed_order_record(
        reference=reference,
        legacy=data,
        customer=customer,
        delivery=delivery,
        processing_ms=processing_ms,
        lines=lines,
    )
    return order


def placed_order_record(
    *,
    reference: str,
    legacy: dict,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    processing_ms: int,
    lines: list[dict] = (),
) -> PlacedOrder:
    """The storefront's receipt, and its PLACED event in the same transaction; a second answer
    for the same reference finds the first (and logs nothing more)."""
    defaults = {
        "number": str(legacy["number"]),
        "legacy_id": int(legacy["id"]),
        "customer": customer if customer is not None and customer.is_authenticated else None,
        "email": delivery.email,
        "name": delivery.name,
        "address_line": delivery.address_line,
        "city": delivery.city,
        "region": delivery.region,
        "postcode": delivery.postcode,
        "country": delivery.country,
        "total_cents": int(legacy.get("total_cents") or 0),
        "card_last4": str(legacy.get("card_last4") or "")[-4:],
        "processing_ms": processing_ms,
    }
    try:
        with transaction.atomic():
            order, created = PlacedOrder.objects.get_or_create(reference=reference, defaults=defaults)
            if created:
                checkout_placed_append(
                    number=order.number, reference=reference, lines=list(lines), total_cents=order.total_cents
                )
    except IntegrityError:  # a double submit recorded it a moment ago
        order = PlacedOrder.objects.get(reference=reference)
    return order
