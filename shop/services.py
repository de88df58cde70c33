"""Writes for the storefront's baskets: their changes, the merge on sign-in, and taking out
what an order took. Checkout is shop.checkouts'.

Services take plain data and raise the domain exceptions below; views turn those into
pages or JSON errors.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from shop.models import Basket, BasketLine, PlacedOrder, Product
from shop.selectors import SESSION_BASKET, basket_get_for_request

# The most of one product a basket line may hold, whatever the stock.
MAX_LINE_QUANTITY = 99
# The checkout's idempotency reference, kept in the session until the order is settled.


class BasketError(Exception):
    """A basket change that cannot be made; nothing was written."""


class InvalidQuantity(BasketError):
    pass


class ProductUnavailable(BasketError):
    pass


class BasketMoved(BasketError):
    """The guest's basket joined an account's (a sign-in in another tab) after the change read it:
    a quantity set or a line removed there could take the account's own units with it."""

    def __init__(self):
        super().__init__("You signed in meanwhile, and your basket joined your account's: please check it there.")


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


def _lock_basket(basket: Basket, *, adding: bool = False) -> Basket:
    """Locks the basket to write to: two requests changing one basket queue here, so neither
    overwrites the other's line. A guest's basket that joined an account's on sign-in after the
    request read it: what is added goes to the account's (locked after it, as the merge locks
    them); a quantity set or a line removed is refused (BasketMoved), as it would change the
    account's own units too."""
    locked = Basket.objects.select_for_update().filter(pk=basket.pk).first()
    if locked is None or locked.merged_into_id is None:
        return basket
    if not adding:
        raise BasketMoved
    # Deleting the account's basket clears the mark (SET_NULL): a marked basket has its target.
    return Basket.objects.select_for_update().get(pk=locked.merged_into_id)


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
    basket = _lock_basket(basket, adding=True)
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
    basket = _lock_basket(basket)
    product.refresh_from_db(fields=["stock", "held", "is_active", "deleted_at"])
    _check_line(product=product, quantity=quantity)
    line, _ = BasketLine.objects.update_or_create(basket=basket, product=product, defaults={"quantity": quantity})
    return line


@transaction.atomic
def basket_remove(*, basket: Basket, product: Product) -> bool:
    basket = _lock_basket(basket)
    deleted, _ = BasketLine.objects.filter(basket=basket, product=product).delete()
    return deleted > 0


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
    never past stock or the per-line limit; products no longer on sale are dropped. The
    anonymous basket is left empty, naming the one it joined (`merged_into`)."""
    if basket is None or basket.owner_id is not None:
        return basket
    # The guest's basket first, as an order's take locks it (basket_take_placed): the take
    # before the merge leaves nothing of the order to copy; after it, the take follows the mark.
    basket = (
        Basket.objects.select_for_update().filter(pk=basket.pk, owner__isnull=True, merged_into__isnull=True).first()
    )
    if basket is None:
        return None
    target = Basket.objects.select_for_update().filter(owner=user).first()
    if target is None:
        basket.owner = user
        basket.session_key = None
        basket.save(update_fields=["owner", "session_key", "updated_at"])
        return basket
    moved = {}
    for line in BasketLine.objects.filter(basket=basket).select_related("product"):
        product = line.product
        if not product.is_on_sale or product.available <= 0:
            continue
        had = BasketLine.objects.filter(basket=target, product=product).values_list("quantity", flat=True).first() or 0
        quantity = min(had + line.quantity, product.available, MAX_LINE_QUANTITY)
        if quantity > had:
            BasketLine.objects.update_or_create(basket=target, product=product, defaults={"quantity": quantity})
            moved[product.slug] = {"had": had, "added": quantity - had}
    BasketLine.objects.filter(basket=basket).delete()
    basket.merged_into = target
    basket.merged_lines = moved
    basket.session_key = None
    basket.save(update_fields=["merged_into", "merged_lines", "session_key", "updated_at"])
    return target


# --- Checkout ---------------------------------------------------------------------------


def basket_take_placed(
    *, basket: Basket | None, order: PlacedOrder, lines: list[dict], follow_merge: bool = True
) -> bool | None:
    """Takes a placed order's `lines` out of the basket, once for the order whichever request is
    answered with it first, in one transaction with the mark on its receipt (lines_taken). None
    when an earlier request took them; else whether anything is left in the basket.

    A guest's basket that joined an account's while the order was being placed (signed in in
    another tab) has its lines there: with `follow_merge` they are taken from the account's."""
    with transaction.atomic():
        claimed = PlacedOrder.objects.filter(pk=order.pk).exclude(lines_taken=True).update(lines_taken=True)
        if not claimed:
            return None
        if basket is None:
            return False
        locked = Basket.objects.select_for_update().filter(pk=basket.pk).first()
        if locked is None or locked.merged_into_id is None:
            return basket_take_ordered(basket=basket, lines=lines)
        if not follow_merge:
            return False
        return _basket_take_merged(locked, lines=lines)


def _basket_take_merged(merged: Basket, *, lines: list[dict]) -> bool:
    """An order's lines out of the account's basket its guest's basket joined: no more of each
    than the merge added there, and never into what the account held before it (however its
    line changed since), so the account's own units stay."""
    # The account's basket row, as every change to it takes it (_lock_basket): a change under way
    # waits, and then reads the lines as this take leaves them.
    target = Basket.objects.select_for_update().get(pk=merged.merged_into_id)
    held = dict(BasketLine.objects.filter(basket=target).values_list("product__slug", "quantity"))
    moved = {slug: dict(entry) for slug, entry in merged.merged_lines.items()}
    taken = []
    for ordered in lines:
        entry = moved.get(ordered["product"])
        if entry is None:
            continue
        own = entry["had"]
        quantity = min(ordered["quantity"], entry["added"], max(0, held.get(ordered["product"], 0) - own))
        if quantity > 0:
            taken.append({**ordered, "quantity": quantity})
            entry["added"] -= quantity
    Basket.objects.filter(pk=merged.pk).update(
        merged_lines={slug: entry for slug, entry in moved.items() if entry["added"] > 0}
    )
    return basket_take_ordered(basket=target, lines=taken)


def basket_take_ordered(*, basket: Basket, lines: list[dict]) -> bool:
    """Takes an order's lines out of the basket, unit for unit (what was added since stays), and
    says whether anything is left in it."""
    with transaction.atomic():
        # The basket's row, as every change to it takes it (_lock_basket): an add under way waits,
        # and then reads the line as this take leaves it, instead of writing back what it read.
        Basket.objects.select_for_update().filter(pk=basket.pk).first()
        held = {line.product.slug: line for line in BasketLine.objects.filter(basket=basket).select_related("product")}
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
