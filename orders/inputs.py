"""The hot path's view of the shared order-body contract (defined in shop.order_input, where
the monolith's buy-now reads it too)."""

from shop.order_input import (
    IDEMPOTENCY_KEY_MAX,
    KEY_REUSED_DETAIL,
    InvalidInput,
    OrderInput,
    client_ip,
    idempotency_key_parse,
    json_body_check,
    order_input_parse,
)

__all__ = [
    "IDEMPOTENCY_KEY_MAX",
    "KEY_REUSED_DETAIL",
    "InvalidInput",
    "OrderInput",
    "client_ip",
    "idempotency_key_parse",
    "json_body_check",
    "order_input_parse",
]
