"""Orders found by email rather than by the account that placed them: the sale's orders live
with the hot path, which the storefront never imports, so the deployment (config) hands the
order pages finders for them; the storefront only knows this small shape. A guest's own
storefront orders are found the same way.

"My orders" asks them only for an address the account has verified (shop.accounts): an
address typed into a sign-up form proves nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

from shop.models import PlacedOrder

STATUS_LABELS = {"processing": "Processing", "complete": "Complete", "failed": "Failed"}


@dataclass(frozen=True)
class FoundOrder:
    number: str
    status: str  # processing, complete or failed
    detail: str
    title: str
    quantity: int
    total_cents: int
    placed_at: datetime
    legacy_number: str = ""
    url: str = ""  # a page of the order, when there is one

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.capitalize())


class OrderFinder(Protocol):
    def find(self, *, number: str, email: str) -> FoundOrder | None:
        """The order with this number and email (both matched ignoring case), or None."""

    def for_email(self, *, email: str) -> list[FoundOrder]:
        """Every order placed with this email, newest first. Callers pass only an address
        its holder has proved (a verified account's, or one typed with an order number)."""


class GuestOrderFinder:
    """The storefront's orders placed signed out with an email: an account that verified that
    address sees them beside the orders it placed signed in."""

    def find(self, *, number: str, email: str) -> FoundOrder | None:
        number, email = number.strip(), email.strip()
        if not number or not email:
            return None
        order = PlacedOrder.objects.filter(customer__isnull=True, number__iexact=number, email__iexact=email).first()
        return _guest_found(order) if order is not None else None

    def for_email(self, *, email: str) -> list[FoundOrder]:
        if not email.strip():
            return []
        orders = PlacedOrder.objects.filter(customer__isnull=True, email__iexact=email.strip())
        return [_guest_found(order) for order in orders.order_by("-placed_at")[:100]]


def _guest_found(order: PlacedOrder) -> FoundOrder:
    # The order page opens only for the session that placed or looked up the order: the link
    # is the lookup, filled in, which grants that with one click.
    return FoundOrder(
        number=order.number,
        status="complete",
        detail="",
        title="",
        quantity=0,
        total_cents=order.total_cents,
        placed_at=order.placed_at,
        url=f"/orders/lookup/?{urlencode({'number': order.number, 'email': order.email})}",
    )
