"""The one HTTP client for the legacy order API (LEGACY_API_URL).

The storefront and the hot-path workers reach the order backend only through this module:
it is the seam the product is about. Answers are returned as `LegacyResponse`; transport
failures (refused, timed out) raise `LegacyUnavailable`, like a 503.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings

_pool = urllib3.PoolManager(num_pools=4, maxsize=32, retries=False)


class LegacyUnavailable(Exception):
    """The legacy API could not be reached or shed the request (503, refused, timeout)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LegacyResponse:
    status: int
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


def _request(
    method: str, path: str, body: dict | None = None, *, timeout: float | None = None, caller: str = "storefront"
) -> LegacyResponse:
    url = f"{settings.LEGACY_API_URL}{path}"
    try:
        response = _pool.request(
            method,
            url,
            body=json.dumps(body).encode() if body is not None else None,
            # The token says who is calling (the storefront or the hot path), for the legacy API's
            # authorisation and its load figures alike.
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {settings.LEGACY_API_TOKENS.get(caller, '')}",
            },
            timeout=urllib3.Timeout(connect=2.0, read=timeout or settings.LEGACY_API_TIMEOUT),
        )
    except urllib3.exceptions.HTTPError as exc:
        raise LegacyUnavailable(f"legacy API unreachable: {exc.__class__.__name__}") from exc
    if response.status in (502, 503, 504):
        raise LegacyUnavailable(f"legacy API answered {response.status}", retry_after=_retry_after(response))
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {"error": "unreadable", "body": response.data[:200].decode(errors="replace")}
    if response.status == 409 and isinstance(data, dict) and data.get("error") == "in_progress":
        # Another request is placing this very order right now: like a 503, a retry gets its answer.
        raise LegacyUnavailable("legacy API is placing this order already", retry_after=_retry_after(response))
    return LegacyResponse(status=response.status, data=data if isinstance(data, dict) else {"data": data})


def _retry_after(response) -> float | None:
    retry_after = response.headers.get("Retry-After")
    return float(retry_after) if retry_after and retry_after.isdigit() else None


def reference_for_key(idempotency_key: str) -> str:
    """The legacy API's reference for a buyer's Idempotency-Key, the same whichever side takes
    the order: a retry that the edge sends to the monolith after the hot path accepted it (the
    route switched off, a canary without its cookie) then finds the same order instead of
    placing another. At most 64 characters, as the legacy API wants."""
    return "key-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def order_place(
    *,
    reference: str,
    name: str,
    email: str,
    lines: list[dict],
    card_number: str,
    timeout: float | None = None,
    caller: str = "storefront",
    hold: str | None = None,
) -> LegacyResponse:
    """POST /orders; idempotent on `reference`, so a retry can never place it twice. With
    `hold`, the units are drawn from that hold only; the answer's "hold" says whether they
    were (a reference placed earlier from open stock answers with its first order)."""
    body = {
        "reference": reference,
        "customer": {"name": name, "email": email},
        "lines": lines,
        "payment": {"card_number": card_number},
    }
    if hold:
        body["hold"] = hold
    return _request("POST", "/orders", body, timeout=timeout, caller=caller)


def order_get(*, order_id: int) -> LegacyResponse:
    return _request("GET", f"/orders/{int(order_id)}")


def ping() -> bool:
    try:
        return _request("GET", "/ping").status == 200
    except LegacyUnavailable:
        return False


# --- Holds: units kept aside in the stock of record for one channel (a sale) --------------
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


@dataclass(frozen=True)
class Stock:
    product: str
    on_hand: int
    held: int
    available: int


def _hold_from(response: LegacyResponse) -> Hold:
    data = response.data
    return Hold(
        reference=str(data.get("reference", "")),
        product=str(data.get("product", "")),
        quantity=int(data.get("quantity") or 0),
        status=str(data.get("status") or ""),
    )


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
    response = _request(
        "POST", "/holds", {"reference": reference, "product": product, "quantity": quantity}, caller=caller
    )
    if not response.ok:
        raise _refusal(response, f"hold {reference} not taken")
    return _hold_from(response)


def hold_get(*, reference: str, caller: str = "hotpath") -> Hold | None:
    """The hold as the stock of record has it; None when it does not know the reference."""
    response = _request("GET", _hold_path(reference), caller=caller)
    if response.status == 404:
        return None
    if not response.ok:
        raise _refusal(response, f"hold {reference} not read")
    return _hold_from(response)


def hold_set(*, reference: str, quantity: int, caller: str = "hotpath") -> Hold:
    """Sets how many units the hold keeps: growing takes them from what is available (else
    OutOfStock), shrinking gives them back to open stock."""
    response = _request("PATCH", _hold_path(reference), {"quantity": quantity}, caller=caller)
    if not response.ok:
        raise _refusal(response, f"hold {reference} not set to {quantity}")
    return _hold_from(response)


def hold_release(*, reference: str, caller: str = "hotpath") -> None:
    """Gives what the hold still keeps back to open stock; releasing twice, or a reference the
    stock of record does not know, is not an error."""
    response = _request("DELETE", _hold_path(reference), caller=caller)
    if not response.ok and response.status not in (204, 404):
        raise _refusal(response, f"hold {reference} not released")


def stock_get(*, product: str, caller: str = "hotpath") -> Stock | None:
    """On hand, held and available units of a product in the stock of record; None when the
    legacy API does not know the product."""
    response = _request("GET", f"/stock/{urllib.parse.quote(product, safe='')}", caller=caller)
    if response.status == 404:
        return None
    if not response.ok:
        raise _refusal(response, f"stock of {product} not read")
    data = response.data
    return Stock(
        product=str(data.get("product", product)),
        on_hand=int(data.get("on_hand") or 0),
        held=int(data.get("held") or 0),
        available=int(data.get("available") or 0),
    )
