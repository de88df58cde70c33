"""Orders found by email rather than by the account that placed them: the sale's orders live
with the hot path, which the storefront never imports, so the deployment (config) hands the
order pages finders for them; the storefront only knows this small shape. A guest's own
storefront orders are found the same way.

"My orders" asks them only for an address the account has verified (shop.accounts): an
address typed into a sign-up form proves nothing. The lookup asks them with the card's last
four digits too, and a signed link (shop.order_links) with the number and email it carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hmac import compare_digest
from typing import Protocol

from shop.models import PlacedOrder
from shop.order_links import ACCOUNT_LINK_VALIDITY, order_link_path

STATUS_LABELS = {"processing": "Processing", "complete": "Complete", "failed": "Failed"}


@dataclass(frozen=True)
class FoundOrder:
    """What the buyer sees of an order: its number is the buyer's own (a sale order's T-number;
    the legacy API's number for it is the merchant's business, as on its status URL)."""

    number: str
    status: str  # processing, complete or failed
    detail: str
    title: str
    quantity: int
    total_cents: int
    placed_at: datetime
    url: str = ""  # a page of the order, when there is one

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.capitalize())


class OrderFinder(Protocol):
    def find(self, *, number: str, email: str, card_last4: str) -> FoundOrder | None:
        """The order with this number and email (both matched ignoring case) paid with a card
        ending in these four digits, or None."""

    def find_granted(self, *, number: str, email: str) -> FoundOrder | None:
        """The order with this number and email, for a caller that proved both: a signed link
        the shop minted, or the session that opened one. Never for what a visitor typed."""

    def for_email(self, *, email: str) -> list[FoundOrder]:
        """Every order placed with this email, newest first. Callers pass only an address
        its holder has proved (a verified account's)."""


def card_last4_matches(given: str, actual: str) -> bool:
    return len(actual) == 4 and compare_digest(given.strip().encode(), actual.encode())


def placed_order_match(*, number: str, email: str, card_last4: str) -> PlacedOrder | None:
    """The storefront's order with this number and email (ignoring case) and card digits.
    A receipt recorded before the shop kept the digits asks the legacy API for them; when it
    cannot answer, the order is not found, as for any wrong answer."""
    number, email = number.strip(), email.strip()
    if not number or not email:
        return None
    order = PlacedOrder.objects.filter(number__iexact=number, email__iexact=email).first()
    if order is None:
        return None
    actual = order.card_last4 or _card_last4_of_record(order)
    return order if card_last4_matches(card_last4, actual) else None


def _card_last4_of_record(order: PlacedOrder) -> str:
    import legacy_client

    answer = legacy_client.order_get(order_id=order.legacy_id)
    digits = str((answer.data or {}).get("card_last4") or "") if answer is not None else ""
    return digits if len(digits) == 4 and digits.isdigit() else ""


class GuestOrderFinder:
    """The storefront's orders placed signed out with an email: an account that verified that
    address sees them beside the orders it placed signed in."""

    def find(self, *, number: str, email: str, card_last4: str) -> FoundOrder | None:
        order = placed_order_match(number=number, email=email, card_last4=card_last4)
        return _guest_found(order) if order is not None and order.customer_id is None else None

    def find_granted(self, *, number: str, email: str) -> FoundOrder | None:
        order = PlacedOrder.objects.filter(
            customer__isnull=True, number__iexact=number.strip(), email__iexact=email.strip()
        ).first()
        return _guest_found(order) if order is not None else None

    def for_email(self, *, email: str) -> list[FoundOrder]:
        if not email.strip():
            return []
        orders = PlacedOrder.objects.filter(customer__isnull=True, email__iexact=email.strip())
        return [_guest_found(order) for order in orders.order_by("-placed_at")[:100]]


def _guest_found(order: PlacedOrder) -> FoundOrder:
    # The order page opens only for the session that placed the order or was granted it: the
    # link is a signed one, which grants that with one click.
    return FoundOrder(
        number=order.number,
        status="complete",
        detail="",
        title="",
        quantity=0,
        total_cents=order.total_cents,
        placed_at=order.placed_at,
        url=order_link_path(number=order.number, email=order.email, valid_for=ACCOUNT_LINK_VALIDITY),
    )


def placed_order_for_link(*, number: str, email: str) -> PlacedOrder | None:
    """The storefront's order a signed link names (its number and email came from the shop)."""
    return PlacedOrder.objects.filter(number__iexact=number.strip(), email__iexact=email.strip()).first()
