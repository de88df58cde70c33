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
from typing import Protocol, TypeVar

from django.db.models import F, Model, Q, QuerySet
from django.db.models.functions import Length

from shop.db_functions import AsciiLower, OctetLength
from shop.models import PlacedOrder
from shop.order_input import email_key, email_spellings
from shop.order_links import ACCOUNT_LINK_VALIDITY, order_link_path

M = TypeVar("M", bound=Model)

# The most orders My orders shows from each finder.
FOR_EMAIL_LIMIT = 100
_BATCH = 200

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
    unit_price_cents: int | None = None  # a sale order's one line's price, as its 202 gave it

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.capitalize())


class OrderFinder(Protocol):
    def own_number(self, *, number: str) -> str | None:
        """The buyer's number of the order this number names (ignoring case), whichever of its
        numbers it is, or None: the lookup's throttle counts the tries at one order together."""

    def find(self, *, number: str, email: str, card_last4: str) -> FoundOrder | None:
        """The order with this number (ignoring case) and email (the same address by
        email_key) paid with a card ending in these four digits, or None."""

    def find_granted(self, *, number: str, email: str) -> FoundOrder | None:
        """The order with this number and email, for a caller that proved both: a signed link
        the shop minted, or the session that opened one. Never for what a visitor typed."""

    def for_email(self, *, email: str) -> list[FoundOrder]:
        """Every order placed with this email, newest first. Callers pass only an address
        its holder has proved (a verified account's)."""


def card_last4_matches(given: str, actual: str) -> bool:
    return len(actual) == 4 and compare_digest(given.strip().encode(), actual.encode())


def with_email(rows: QuerySet[M], *, field: str, email: str, limit: int | None = None) -> list[M]:
    """The rows whose `field` holds this address, in their order, at most `limit`; the key
    (email_key) decides. The database narrows to the rows holding one of the address's spellings
    (email_spellings) but for the case of ASCII letters, and to those with its local part and a
    character beyond ASCII: a domain written in another case, width or script than those
    spellings (`taro@ｇｍａｉｌ.com`, `Ann@BÜCHER.de`) may still be the same address."""
    key, spellings = email_key(email), email_spellings(email)
    if not spellings:
        return []
    local = key.rpartition("@")[0]
    candidates = rows.annotate(
        email_folded=AsciiLower(field), email_bytes=OctetLength(field), email_chars=Length(field)
    ).filter(
        Q(email_folded__in=spellings) | (Q(email_folded__startswith=f"{local}@") & ~Q(email_bytes=F("email_chars")))
    )
    # Read a batch at a time until `limit` match (no server-side cursor: a pooler in transaction
    # mode has none); the rows that do not are few, the same local part at another domain.
    found: list[M] = []
    start = 0
    while limit is None or len(found) < limit:
        batch = list(candidates[start : start + _BATCH])
        found += [row for row in batch if email_key(getattr(row, field)) == key]
        if len(batch) < _BATCH:
            break
        start += _BATCH
    return found[:limit]


def placed_order_match(*, number: str, email: str, card_last4: str) -> PlacedOrder | None:
    """The storefront's order with this number (ignoring case), email (email_key) and card
    digits. A receipt recorded before the shop kept the digits asks the legacy API for them;
    when it cannot answer, the order is not found, as for any wrong answer."""
    order = _placed_order(number=number, email=email)
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

    def own_number(self, *, number: str) -> str | None:
        # The storefront's numbers are written in capitals, and an order has only the one.
        return PlacedOrder.objects.filter(number=number.strip().upper()).values_list("number", flat=True).first()

    def find(self, *, number: str, email: str, card_last4: str) -> FoundOrder | None:
        order = placed_order_match(number=number, email=email, card_last4=card_last4)
        return _guest_found(order) if order is not None and order.customer_id is None else None

    def find_granted(self, *, number: str, email: str) -> FoundOrder | None:
        order = _placed_order(number=number, email=email)
        return _guest_found(order) if order is not None and order.customer_id is None else None

    def for_email(self, *, email: str) -> list[FoundOrder]:
        orders = PlacedOrder.objects.filter(customer__isnull=True).order_by("-placed_at")
        return [_guest_found(o) for o in with_email(orders, field="email", email=email, limit=FOR_EMAIL_LIMIT)]


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
    return _placed_order(number=number, email=email)


def _placed_order(*, number: str, email: str) -> PlacedOrder | None:
    if not number.strip():
        return None
    orders = PlacedOrder.objects.filter(number__iexact=number.strip())
    return next(iter(with_email(orders, field="email", email=email)), None)
