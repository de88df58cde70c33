"""HTTP to the legacy API: one connection pool, the caller's bearer token, JSON both ways, and
the two ways a request can fail before an answer: not sent at all, or sent and unanswered."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from django.conf import settings

from tracing.context import current_carrier

logger = logging.getLogger(__name__)
_pool = urllib3.PoolManager(num_pools=4, maxsize=32, retries=False)


class LegacyUnavailable(Exception):
    """The legacy API could not be reached or shed the request: try again later.

    `sent` says whether the request may have reached it (a read timeout: it may still be
    working on it) or surely did not (the connection was refused or never made)."""

    def __init__(self, message: str, *, retry_after: float | None = None, sent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.sent = sent


@dataclass(frozen=True)
class LegacyResponse:
    status: int
    data: dict[str, Any]
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in (200, 201)


def request(
    method: str, path: str, body: dict | None = None, *, timeout: float | None = None, caller: str = "storefront"
) -> LegacyResponse:
    """One request; any HTTP answer is returned. Raises LegacyUnavailable when there is none."""
    url = f"{settings.LEGACY_API_URL}{path}"
    token = settings.LEGACY_API_TOKENS.get(caller, "")
    if not token:
        logger.error("No LEGACY_API_TOKEN_%s is set: the legacy API refuses this call (401).", caller.upper())
    try:
        response = _pool.request(
            method,
            url,
            body=json.dumps(body).encode() if body is not None else None,
            # The token says who is calling (the storefront or the hot path), for the legacy API's
            # authorisation and its load figures alike.
            # The caller's trace goes along, sampled or not, so the legacy API follows its
            # decision: a caller whose instrumentation is suppressed (a trace not sampled)
            # would otherwise send none, and the legacy API would start traces of its own.
            # Where the call is traced, the instrumentation puts its own span's header here.
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {token}",
                **current_carrier(),
            },
            timeout=urllib3.Timeout(connect=2.0, read=timeout or settings.LEGACY_API_TIMEOUT),
        )
    except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as exc:
        # The request went out: the legacy API may have acted on it without our hearing back.
        raise LegacyUnavailable(f"legacy API did not answer: {exc.__class__.__name__}", sent=True) from exc
    except urllib3.exceptions.HTTPError as exc:
        # Refused, unreachable or a connect timeout: nothing was sent.
        raise LegacyUnavailable(f"legacy API unreachable: {exc.__class__.__name__}") from exc
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {"error": "unreadable", "body": response.data[:200].decode(errors="replace")}
    return LegacyResponse(
        status=response.status,
        data=data if isinstance(data, dict) else {"data": data},
        retry_after=_retry_after(response),
    )


def _retry_after(response) -> float | None:
    """`Retry-After` in seconds: a number of them, or an HTTP date (RFC 9110, as a proxy or a
    gateway in front of the legacy API may send) counted from now; None when absent or unread."""
    return retry_after_seconds(response.headers.get("Retry-After"))


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    value = (value or "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
