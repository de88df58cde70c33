"""The legacy backend's domain errors: raised by its services having written nothing, mapped
to HTTP answers in one place (legacy_api.api_base)."""

from __future__ import annotations


class OrderError(Exception):
    """An order or a hold that cannot be placed or changed; nothing was written."""


class InvalidOrder(OrderError):
    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(f"invalid: {', '.join(fields)}")
        self.fields = fields


class OutOfStock(OrderError):
    def __init__(self, *, product: str, available: int, field: str = "quantity", line: int | None = None):
        super().__init__(f"{product}: only {available} available")
        self.product = product
        self.available = available
        self.line = line
        self.field = f"lines.{line}.quantity" if line is not None else field


class CardDeclined(OrderError):
    def __init__(self, *, reason: str):
        super().__init__(f"card declined: {reason}")
        self.reason = reason


class ReferenceReused(OrderError):
    """The reference is known with another body: not a retry of the same request."""

    def __init__(self, *, reference: str):
        super().__init__(f"reference {reference!r} was used with another body")
        self.reference = reference


class InProgress(OrderError):
    """Another request is working on this reference right now; retry after a moment."""

    retry_after = 1

    def __init__(self, *, reference: str):
        super().__init__(f"reference {reference!r} is being worked on")
        self.reference = reference


class Expired(OrderError):
    """The request reached the order backend after its `place_before`: its caller had given up
    on the answer by then, so it places nothing (a caller's lookup after that may be trusted)."""

    def __init__(self, *, reference: str):
        super().__init__(f"reference {reference!r}: the request arrived after its place_before")
        self.reference = reference


class HoldNotFound(OrderError):
    def __init__(self, *, reference: str):
        super().__init__(f"no hold {reference!r}")
        self.reference = reference


class HoldReleased(OrderError):
    def __init__(self, *, reference: str):
        super().__init__(f"hold {reference!r} is released")
        self.reference = reference
