"""The sale's orders (orders.HotOrder) as the storefront's order pages find them: by their
T-number or the legacy API's L-number with the buyer's email, and by a customer's email.
config composes the two apps: shop never imports orders."""

from __future__ import annotations

from django.db.models import Q

from orders.models import HotOrder
from orders.status import status_detail
from shop.order_finders import FoundOrder


def _found(order: HotOrder) -> FoundOrder:
    return FoundOrder(
        number=order.number or "",
        status=order.status,
        detail=status_detail(order),
        title=order.product.title,
        quantity=order.quantity,
        total_cents=order.total_cents,
        placed_at=order.created_at,
        legacy_number=order.legacy_number,
    )


class SaleOrderFinder:
    def find(self, *, number: str, email: str) -> FoundOrder | None:
        number, email = number.strip(), email.strip()
        if not number or not email:
            return None
        order = (
            HotOrder.objects.select_related("product")
            .filter(Q(number__iexact=number) | Q(legacy_number__iexact=number), customer_email__iexact=email)
            .first()
        )
        return _found(order) if order is not None else None

    def for_email(self, *, email: str) -> list[FoundOrder]:
        if not email.strip():
            return []
        orders = HotOrder.objects.select_related("product").filter(customer_email__iexact=email.strip())
        return [_found(order) for order in orders.order_by("-created_at")[:100]]


ORDER_FINDERS = (SaleOrderFinder(),)
