"""Orders at the legacy API, answered as named outcomes: every status code and transport
failure of POST /orders (and of its lookup, GET /orders/lookup) is mapped here, once, so
that the storefront and the hot path branch on what happened, never on how HTTP said it."""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings

from legacy_client.transport import LegacyResponse, LegacyUnavailable, request

logger = logging.getLogger(__name__)

# The most one order may come to at the legacy API (its callers' receipts keep 32-bit totals):
# past it the order is refused (400 on `lines`), so no caller may promise such an order.
ORDER_TOTAL_MAX_CENTS = 2_147_483_647


class Outcome(StrEnum):
    PLACED = "placed"
    DECLINED = "declined"
    OUT_OF_STOCK = "out_of_stock"
    # The legacy API found the body wrong (400): `fields` says which part.
    INVALID = "invalid"
    # Not placed now, worth trying again later with the same reference: over capacity (503
    # over_capacity), throttled (429), its capacity gate unreachable (503 unavailable), an
    # answered server error, or the request arrived after its place_before (408 expired).
    # `OrderAnswer.overloaded` says whether it was load.
    BUSY = "busy"
    # An earlier request with this reference is still being placed there (409 in_progress):
    # not a failure of this one. The legacy API ends a dead request's claim when its lease
    # does, so the same reference is answered in time.
    IN_PROGRESS = "in_progress"
    # The reference was used for another body (422): this body can never be placed under it.
    REFERENCE_REUSED = "reference_reused"
    # Any other refusal (401, 403, 404, ...): retrying the same request cannot help.
    REFUSED = "refused"
    # Nothing reached the legacy API (connection refused or not made in time).
    NOT_SENT = "not_sent"
    # Sent, and no answer: the legacy API may have placed it, or may still be placing it
    # (read timeout, connection lost, a gateway's 504). Only the same reference again tells.
    UNKNOWN = "unknown"
    # A lookup's answer (order_find): the caller has no order under the reference.
    NOT_FOUND = "not_found"


# Outcomes after which the same reference may be sent again later.
RETRYABLE = frozenset({Outcome.BUSY, Outcome.IN_PROGRESS, Outcome.NOT_SENT, Outcome.UNKNOWN})


@dataclass(frozen=True)
class OrderAnswer:
    outcome: Outcome
    # The legacy API's body (for PLACED: id, number, reference, status, total_cents, hold).
    data: dict[str, Any] = field(default_factory=dict)
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""

    @property
    def retryable(self) -> bool:
        return self.outcome in RETRYABLE

    @property
    def overloaded(self) -> bool:
        """A BUSY that the legacy API said was load (every slot taken, or throttled), not a fault."""
        return self.outcome == Outcome.BUSY and (self.status == 429 or self.data.get("error") == "over_capacity")

    @property
    def fields(self) -> dict:
        return self.data.get("fields") or {}

    def __str__(self) -> str:
        return self.detail or f"legacy API: {self.outcome}"


def order_given(data: dict) -> bool:
    """Whether an answer carries a placed order: its id and its number."""
    number, order_id = data.get("number"), data.get("id")
    return isinstance(number, str) and bool(number) and type(order_id) is int


def order_answer(response: LegacyResponse) -> OrderAnswer:
    """The outcome of an HTTP answer to POST /orders."""
    status, data = response.status, response.data
    error = data.get("error")

    def answer(outcome: Outcome, detail: str) -> OrderAnswer:
        return OrderAnswer(outcome, data=data, status=status, retry_after=response.retry_after, detail=detail)

    if status in (200, 201):
        if not order_given(data):
            # A 2xx that does not carry the order (a proxy's page, a body cut short): it may have
            # been placed, so it is asked for again by its reference, never taken as placed.
            return answer(Outcome.UNKNOWN, f"legacy API answered {status} without the order")
        return answer(Outcome.PLACED, "placed")
    if status == 402:
        return answer(Outcome.DECLINED, "the legacy API declined the card")
    if status == 408:
        # Answered while this client still waited: the legacy API's clock runs ahead of ours
        # by more than the timeout, and every order would be refused so until the clocks agree.
        logger.error(
            "the legacy API refused an order as arrived after its place_before while we waited: its clock "
            "(%s) runs ahead of this host's (%s)",
            data.get("now"),
            datetime.now(UTC).isoformat(),
        )
        return answer(Outcome.BUSY, "the legacy API received the order after its place_before: not placed")
    if status == 409 and error == "in_progress":
        return answer(Outcome.IN_PROGRESS, "legacy API is still placing the order")
    if status == 409:
        return answer(Outcome.OUT_OF_STOCK, "the legacy API has no stock left")
    if status == 422:
        return answer(Outcome.REFERENCE_REUSED, f"legacy API refused the reference ({status}): {data}")
    if status == 400:
        return answer(Outcome.INVALID, f"legacy API refused the order ({status}): {data}")
    if status == 504:
        return answer(Outcome.UNKNOWN, f"legacy API answered {status}")
    if status in (429, 503) or status >= 500:
        return answer(Outcome.BUSY, f"legacy API answered {status}")
    return answer(Outcome.REFUSED, f"legacy API refused the order ({status}): {data}")


def order_place(
    *,
    reference: str,
    name: str,
    email: str,
    lines: list[dict],
    card_number: str,
    timeout: float | None = None,
    caller: str | None = None,
    hold: str | None = None,
) -> OrderAnswer:
    """POST /orders; idempotent on `reference`, so a retry can never place it twice. With
    `hold`, the units are drawn from that hold only; the answer's "hold" says whether they
    were (a reference placed earlier from open stock answers with its first order). Never
    raises for the legacy API's sake: a failure is an outcome.

    The caller is the storefront unless named, or the hot path for an order drawn on a hold: a
    hold answers only to the caller that took it, and this client takes them for the hot path.

    The request carries `place_before`, when this client stops waiting for its answer: one the
    network delivers later places nothing, so that a lookup made once the answer was given up
    on (order_find) tells the truth for good. The legacy API's clock is taken to agree with
    ours to within the margin every such lookup waits (orders.permits.legacy_slot_lease_seconds)."""
    caller = caller or ("hotpath" if hold else "storefront")
    timeout = timeout or settings.LEGACY_API_TIMEOUT
    body = {
        "reference": reference,
        "customer": {"name": name, "email": email},
        "lines": lines,
        "payment": {"card_number": card_number},
        "place_before": (datetime.now(UTC) + timedelta(seconds=timeout)).isoformat(),
    }
    if hold:
        body["hold"] = hold
    try:
        response = request("POST", "/orders", body, timeout=timeout, caller=caller)
    except LegacyUnavailable as exc:
        return OrderAnswer(Outcome.UNKNOWN if exc.sent else Outcome.NOT_SENT, detail=str(exc))
    return order_answer(response)


def order_find(*, reference: str, caller: str = "hotpath") -> OrderAnswer:
    """Asks whether `caller` has an order under `reference`, placing nothing (GET
    /orders/lookup?reference=): PLACED with the order, as POST /orders answers it; NOT_FOUND when it
    has none (another caller's order under that reference is not its own); IN_PROGRESS while a
    request of its own still works on the reference; NOT_SENT, UNKNOWN, BUSY or REFUSED when the
    legacy API did not say (one without the lookup answers 404: REFUSED, never taken for "none").
    Never raises for the legacy API's sake."""
    path = f"/orders/lookup?{urllib.parse.urlencode({'reference': reference})}"
    try:
        response = request("GET", path, caller=caller)
    except LegacyUnavailable as exc:
        return OrderAnswer(Outcome.UNKNOWN if exc.sent else Outcome.NOT_SENT, detail=str(exc))
    if response.status != 200:
        return order_answer(response)
    results = response.data.get("results")
    if results == []:
        return OrderAnswer(Outcome.NOT_FOUND, data=response.data, status=200, detail="no order under this reference")
    if isinstance(results, list) and isinstance(results[0], dict) and order_given(results[0]):
        return OrderAnswer(Outcome.PLACED, data=results[0], status=200, detail="placed")
    return OrderAnswer(Outcome.REFUSED, data=response.data, status=200, detail="legacy API answered no results")


def order_get(*, order_id: int) -> LegacyResponse | None:
    """The order of record; None when it cannot be read now (unreachable, busy, unknown)."""
    try:
        response = request("GET", f"/orders/{int(order_id)}")
    except LegacyUnavailable:
        return None
    return response if response.status == 200 else None
