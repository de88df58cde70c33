"""`Retry-After` as the client reads it: seconds, or an HTTP date a proxy in front of the legacy
API may send instead, which was taken for no advice at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legacy_client.transport import retry_after_seconds

NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past: at once
        ("-3", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_a_date(header, seconds):
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("retry_after", "told"),
    [
        (1.0, " Please try again in 1 second."),
        (0.5, " Please try again in 1 second."),
        (5.0, " Please try again in 5 seconds."),
        (7 * 86400.0, " Please try again in a moment."),  # a date a week ahead
        (None, " Please try again in a moment."),
    ],
)
def test_the_checkout_tells_a_buyer_a_wait_worth_taking(retry_after, told):
    from shop.checkouts import retry_told

    assert retry_told(retry_after) == told
