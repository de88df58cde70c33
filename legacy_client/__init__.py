"""The one client of the legacy order API (LEGACY_API_URL), shared by the storefront and the hot
path: the seam the product is about. Neither imports `legacy_api`; both come through here.

Placing an order answers an `OrderAnswer` whose `outcome` names what happened (placed,
declined, out of stock, invalid, busy, reference reused, not sent, sent with the answer
unknown), and so does looking an order up by its reference (`order_find`: placed, or not
found): every HTTP status and transport failure is mapped once, in `legacy_client.orders`,
and callers branch on outcomes only. Holds and stock raise `LegacyRefused`/`OutOfStock` or
`LegacyUnavailable`."""

from legacy_client.holds import (
    HOLD_QUANTITY_MAX,
    LINE_QUANTITY_MAX,
    Hold,
    LegacyRefused,
    OutOfStock,
    Stock,
    hold_create,
    hold_get,
    hold_release,
    hold_set,
    holds_list,
    stock_get,
    stock_receive,
)
from legacy_client.orders import ORDER_TOTAL_MAX_CENTS, OrderAnswer, Outcome, order_find, order_get, order_place
from legacy_client.references import reference_for_key
from legacy_client.transport import LegacyResponse, LegacyUnavailable

__all__ = [
    "HOLD_QUANTITY_MAX",
    "LINE_QUANTITY_MAX",
    "ORDER_TOTAL_MAX_CENTS",
    "Hold",
    "LegacyRefused",
    "LegacyResponse",
    "LegacyUnavailable",
    "OrderAnswer",
    "OutOfStock",
    "Outcome",
    "Stock",
    "hold_create",
    "hold_get",
    "hold_release",
    "hold_set",
    "holds_list",
    "order_find",
    "order_get",
    "order_place",
    "reference_for_key",
    "stock_get",
    "stock_receive",
]
