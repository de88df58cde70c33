"""Fixtures of the log's tests: every event a test writes is checked against the envelope's
JSON Schema, and a small sale's worth of events to append."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from events.models import Event
from events.selectors import events_committed
from events.services import event_append
from tests.conftest import eventually

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "events/schema/envelope.schema.json").read_text())


def assert_envelope_valid(envelope: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(envelope)


@pytest.fixture(autouse=True)
def _every_event_fits_the_envelope(request):
    """After each test that used the database, all its events validate against the schema."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    yield
    for event in Event.objects.all():
        assert_envelope_valid(event.envelope())


@pytest.fixture(autouse=True)
def _handlers_reset():
    from tests.events import handlers

    handlers.seen.clear()
    handlers.failures.clear()
    handlers.crash_at.update(n=0, seen=0)
    yield


def settled() -> None:
    """Waits until every event written so far is readable. The horizon is cluster-wide on
    PostgreSQL: any transaction in flight, in any database, holds readers back a moment."""
    eventually(
        lambda: len(events_committed()) == Event.objects.count(),
        timeout=60,
        message="a transaction older than the test's events stayed in flight",
    )


def sale_event(number: int, *, status: str = "ACCEPTED", subtype: str = "ORDER", type: str = "CHECKOUT") -> Event:
    return event_append(
        source="shop.hotpath",
        detail_type="State change Notification",
        type=type,
        subtype=subtype,
        status=status,
        data={"order_number": f"H{number:06d}", "quantity": 1},
        resources=["arn:aws:events:eu-west-1:123456789012:event-bus/checkout-bus"],
        trace_id=f"1-67a1b2c3-{number:024x}",
    )


def small_sale(orders: int = 4) -> list[Event]:
    """What a little sale leaves in the log: each order accepted, then placed or declined."""
    events = []
    for number in range(1, orders + 1):
        events.append(sale_event(number))
        events.append(sale_event(number, status="COMPLETE" if number % 4 else "DECLINED"))
    return events
