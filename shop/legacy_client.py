"""The one HTTP client for the legacy order API (LEGACY_API_URL).

The storefront and the hot-path workers reach the order backend only through this module:
it is the seam the product is about. Answers are returned as `LegacyResponse`; transport
failures (refused, timed out) raise `LegacyUnavailable`, like a 503.
"""

from __future__ import annotations

import hashlib
import json
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
            # Who is calling, for the legacy API's load figures (the storefront or the hot path).
            headers={"Content-Type": "application/json", "Accept": "application/json", "X-Legacy-Caller": caller},
            timeout=urllib3.Timeout(connect=2.0, read=timeout or settings.LEGACY_API_TIMEOUT),
        )
    except urllib3.exceptions.HTTPError as exc:
        raise LegacyUnavailable(f"legacy API unreachable: {exc.__class__.__name__}") from exc
    if response.status in (502, 503, 504):
        retry_after = response.headers.get("Retry-After")
        raise LegacyUnavailable(
            f"legacy API answered {response.status}",
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {"error": "unreadable", "body": response.data[:200].decode(errors="replace")}
    return LegacyResponse(status=response.status, data=data if isinstance(data, dict) else {"data": data})


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
) -> LegacyResponse:
    """POST /orders; idempotent on `reference`, so a retry can never place it twice."""
    return _request(
        "POST",
        "/orders",
        {
            "reference": reference,
            "customer": {"name": name, "email": email},
            "lines": lines,
            "payment": {"card_number": card_number},
        },
        timeout=timeout,
        caller=caller,
    )


def order_get(*, order_id: int) -> LegacyResponse:
    return _request("GET", f"/orders/{int(order_id)}")


def ping() -> bool:
    try:
        return _request("GET", "/ping").status == 200
    except LegacyUnavailable:
        return False
