"""The sale's orders (orders.HotOrder) as the storefront's order pages find them: by their
T-number or the legacy API's L-number with the buyer's email and the card's last four digits,
by a signed link's number and email, and by a customer's verified email (compared by its key,
shop.order_input.email_key).
config composes the two apps: shop never imports orders."""

from __future__ import annotations

from django.db.models import QuerySet

from orders.models import HotOrder
from orders.status import status_detail
from shop.order_finders import FOR_EMAIL_LIMIT, FoundOrder, card_last4_matches, with_email
from shop.order_links import ACCOUNT_LINK_VALIDITY, order_link_path


def _found(order: HotOrder, *, url: str = "") -> FoundOrder:
    return FoundOrder(
        number=order.number or "",
        status=order.status,
        detail=status_detail(order),
        title=order.product.title,
        quantity=order.quantity,
        total_cents=order.total_cents,
        placed_at=order.created_at,
        url=url,
        unit_price_cents=order.unit_price_cents,
    )


def _numbered(number: str) -> QuerySet[HotOrder]:
    # Either of a sale order's numbers names it: the buyer's T-number (its unique index), or
    # the legacy API's L-number, which confirmation emails of earlier releases
    # still carry. Both are written in capitals; any other number is no sale order's, asked of
    # nobody (the lookup asks before its throttle counts the try).
    number = number.strip().upper()
    if number.startswith("T"):
        return HotOrder.objects.filter(number=number)
    if number.startswith("L"):
        return HotOrder.objects.filter(legacy_number=number)
    return HotOrder.objects.none()


def _by_number_and_email(number: str, email: str) -> HotOrder | None:
    orders = _numbered(number).select_related("product")
    return next(iter(with_email(orders, field="customer_email", email=email)), None)


class SaleOrderFinder:
    def own_number(self, *, number: str) -> str | None:
        number = number.strip().upper()
        if number.startswith("T"):
            return number  # its own already: asked of nobody
        return _numbered(number).exclude(number=None).values_list("number", flat=True).first()

    def find(self, *, number: str, email: str, card_last4: str) -> FoundOrder | None:
        order = _by_number_and_email(number, email)
        if order is None or not card_last4_matches(card_last4, order.card_last4):
            return None
        return _found(order)

    def find_granted(self, *, number: str, email: str) -> FoundOrder | None:
        order = _by_number_and_email(number, email)
        return _found(order) if order is not None else None

    def for_email(self, *, email: str) -> list[FoundOrder]:
        orders = HotOrder.objects.select_related("product").order_by("-created_at")
        found = with_email(orders, field="customer_email", email=email, limit=FOR_EMAIL_LIMIT)
        return [_found(order, url=_link(order)) for order in found]


def _link(order: HotOrder) -> str:
    # An order that never got its number (refused before one was taken) has no page.
    if not order.number:
        return ""
    return order_link_path(number=order.number, email=order.customer_email, valid_for=ACCOUNT_LINK_VALIDITY)


ORDER_FINDERS = (SaleOrderFinder(),)
