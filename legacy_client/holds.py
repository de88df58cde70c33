"""Holds and stock at the legacy API: units kept aside in the stock of record for one channel
(a sale), and what is on hand, held and available."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime

from legacy_client.transport import LegacyResponse, LegacyUnavailable, request

# The legacy API's bounds (its OpenAPI schema): the most units of a product one order's line
# may ask for, and the most a hold may keep. A sale promises nothing past them.
LINE_QUANTITY_MAX = 1000
HOLD_QUANTITY_MAX = 1_000_000


class LegacyRefused(Exception):
    """The legacy API refused a request for a reason retrying cannot fix (4xx)."""

    def __init__(self, message: str, *, status: int, data: dict):
        super().__init__(message)
        self.status = status
        self.data = data


class OutOfStock(LegacyRefused):
    """Fewer units are available than asked for; `available` is how many are."""

    def __init__(self, *, available: int, data: dict):
        super().__init__(f"only {available} available", status=409, data=data)
        self.available = available


@dataclass(frozen=True)
class Hold:
    reference: str
    product: str
    quantity: int
    status: str = ""
    # When the stock of record took it (None when its answer gave no readable time).
    created_at: datetime | None = None


@dataclass(frozen=True)
class Stock:
    product: str
    on_hand: int
    held: int
    available: int


def _answered(method: str, path: str, body: dict | None = None, *, caller: str) -> LegacyResponse:
    """The answer, or LegacyUnavailable when there is none or it says "later" (502-504, 429)."""
    response = request(method, path, body, caller=caller)
    if response.status in (429, 502, 503, 504):
        raise LegacyUnavailable(f"legacy API answered {response.status}", retry_after=response.retry_after)
    return response


def _figure(data: dict, key: str) -> int:
    """A count the answer must carry. A 2xx without it (a proxy's page, a body cut short) says
    nothing about the stock of record: read as 0 it showed an empty hold or no stock, and a
    hold of 0 was then "repaired". It is an answer not had: try again later."""
    value = data.get(key)
    if type(value) is not int or value < 0:
        raise LegacyUnavailable(f"legacy API answered without {key}", sent=True)
    return value


def _hold_from(response: LegacyResponse) -> Hold:
    return _hold_from_data(response.data)


def _hold_from_data(data: dict) -> Hold:
    return Hold(
        reference=str(data.get("reference", "")),
        product=str(data.get("product", "")),
        quantity=_figure(data, "quantity"),
        status=str(data.get("status") or ""),
        created_at=_moment(data.get("created_at")),
    )


def _moment(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _refusal(response: LegacyResponse, what: str) -> LegacyRefused:
    if response.status == 409 and response.data.get("error") == "out_of_stock":
        return OutOfStock(available=int(response.data.get("available") or 0), data=response.data)
    return LegacyRefused(
        f"{what}: legacy API answered {response.status} {response.data.get('error', '')}".strip(),
        status=response.status,
        data=response.data,
    )


def _hold_path(reference: str) -> str:
    return f"/holds/{urllib.parse.quote(reference, safe='')}"


def hold_create(*, reference: str, product: str, quantity: int, caller: str = "hotpath") -> Hold:
    """Takes `quantity` units of `product` aside under `reference` (idempotent on it: the same
    request again answers with the same hold). Raises OutOfStock, LegacyRefused (another body
    under that reference, bad input) or LegacyUnavailable."""
    response = _answered(
        "POST", "/holds", {"reference": reference, "product": product, "quantity": quantity}, caller=caller
    )
    if not response.ok:
        raise _refusal(response, f"hold {reference} not taken")
    return _hold_from(response)


def hold_get(*, reference: str, caller: str = "hotpath") -> Hold | None:
    """The hold as the stock of record has it; None when it does not know the reference."""
    response = _answered("GET", _hold_path(reference), caller=caller)
    if response.status == 404:
        return None
    if not response.ok:
        raise _refusal(response, f"hold {reference} not read")
    return _hold_from(response)


def holds_list(*, status: str | None = "open", product: str | None = None, caller: str = "hotpath") -> list[Hold]:
    """The caller's own holds as the stock of record has them, oldest first (the legacy API
    lists a bounded number): only those in `status` (open, released; None for any), and only
    of `product` when given. Raises LegacyRefused (a bad filter) or LegacyUnavailable."""
    query = {key: value for key, value in (("status", status), ("product", product)) if value is not None}
    path = "/holds" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    response = _answered("GET", path, caller=caller)
    if not response.ok:
        raise _refusal(response, "holds not listed")
    results = response.data.get("results")
    if not isinstance(results, list):
        raise LegacyRefused("holds not listed: the answer has no results", status=response.status, data=response.data)
    return [_hold_from_data(item if isinstance(item, dict) else {}) for item in results]


def hold_set(*, reference: str, quantity: int, caller: str = "hotpath") -> Hold:
    """Sets how many units the hold keeps: growing takes them from what is available (else
    OutOfStock), shrinking gives them back to open stock."""
    response = _answered("PATCH", _hold_path(reference), {"quantity": quantity}, caller=caller)
    if not response.ok:
        raise _refusal(response, f"hold {reference} not set to {quantity}")
    return _hold_from(response)


def hold_release(*, reference: str, caller: str = "hotpath") -> None:
    """Gives what the hold still keeps back to open stock; releasing twice, or a reference the
    stock of record does not know, is not an error."""
    response = _answered("DELETE", _hold_path(reference), caller=caller)
    if not response.ok and response.status not in (204, 404):
        raise _refusal(response, f"hold {reference} not released")


def stock_get(*, product: str, caller: str = "hotpath") -> Stock | None:
    """On hand, held and available units of a product in the stock of record; None when the
    legacy API does not know the product."""
    response = _answered("GET", f"/stock/{urllib.parse.quote(product, safe='')}", caller=caller)
    if response.status == 404:
        return None
    if not response.ok:
        raise _refusal(response, f"stock of {product} not read")
    return _stock_from(response.data, product)


def _stock_from(data: dict, product: str) -> Stock:
    return Stock(
        product=str(data.get("product", product)),
        on_hand=_figure(data, "on_hand"),
        held=_figure(data, "held"),
        available=_figure(data, "available"),
    )


def stock_receive(*, reference: str, product: str, quantity: int, caller: str = "merchant") -> Stock:
    """Adds goods received (a purchase order delivered) to the stock of record, once per
    `reference`: sent again, it adds nothing. Returns the stock after; raises LegacyRefused
    (unknown product, the reference used for another receipt) or LegacyUnavailable."""
    path = f"/stock/{urllib.parse.quote(product, safe='')}/receipts"
    response = _answered("POST", path, {"reference": reference, "quantity": quantity}, caller=caller)
    if not response.ok:
        raise _refusal(response, f"receipt {reference} not recorded")
    return _stock_from(response.data, product)
