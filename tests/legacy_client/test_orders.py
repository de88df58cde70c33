"""The legacy client's outcomes: every answer of the legacy API to POST /orders and to its
lookup by reference, and every way a request can go unanswered, is mapped to one named
outcome, against the real API served over HTTP and real sockets that refuse or never answer."""

import socket
import threading
import uuid
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone

import legacy_client
from legacy_api import services
from legacy_api.models import Order as LegacyOrder
from legacy_api.models import PaymentAuthorisation
from legacy_client import Outcome
from legacy_client.orders import order_answer
from legacy_client.transport import LegacyResponse
from shop.models import Category, Product
from tests.late_delivery import DelayProxy
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED = "4242424242424242"
DECLINED = "4000000000000002"


@pytest.fixture
def rod(db) -> Product:
    rods = Category.objects.create(name="Rods", slug="rods")
    return Product.objects.create(category=rods, title="Rod", slug="rod", price_cents=4999, stock=3)


@pytest.fixture
def served(settings, live_server) -> str:
    return legacy_serve(settings, live_server)


def place(*, reference: str | None = None, quantity: int = 1, card: str = APPROVED, product: str = "rod"):
    return legacy_client.order_place(
        reference=reference or uuid.uuid4().hex,
        name="Ann",
        email="ann@example.com",
        lines=[{"product": product, "quantity": quantity}],
        card_number=card,
    )


def test_placed_then_the_same_reference_answers_with_the_same_order(served, rod):
    first = place(reference="ref-1")
    again = place(reference="ref-1")
    assert (first.outcome, again.outcome) == (Outcome.PLACED, Outcome.PLACED)
    assert again.data["id"] == first.data["id"] and first.data["total_cents"] == 4999


def test_a_declined_card_is_declined_and_retrying_cannot_help(served, rod):
    answer = place(card=DECLINED)
    assert answer.outcome == Outcome.DECLINED and not answer.retryable


def test_short_stock_is_out_of_stock(served, rod):
    answer = place(quantity=4)
    assert answer.outcome == Outcome.OUT_OF_STOCK and answer.data["available"] == 3


def test_a_body_the_api_refuses_is_invalid_and_names_the_field(served, rod):
    answer = place(quantity=0)
    assert answer.outcome == Outcome.INVALID
    assert any("quantity" in name for name in answer.fields)


def test_a_reference_used_for_another_body_is_reference_reused(served, rod):
    assert place(reference="ref-2", quantity=1).outcome == Outcome.PLACED
    assert place(reference="ref-2", quantity=2).outcome == Outcome.REFERENCE_REUSED


def test_a_closed_port_is_not_sent(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.LEGACY_API_URL = f"http://127.0.0.1:{port}/legacy-api"
    answer = place()
    assert answer.outcome == Outcome.NOT_SENT and answer.retryable


def test_a_server_that_takes_the_request_and_never_answers_is_unknown(settings):
    """The request was sent: the legacy API may have acted on it, so it is not "not sent"."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    taken = []

    def accept():
        connection, _ = server.accept()
        taken.append(connection.recv(65536))
        # Keep the connection open, unanswered, until the client gives up.
        connection.recv(1)
        connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.LEGACY_API_URL = f"http://127.0.0.1:{server.getsockname()[1]}/legacy-api"
    try:
        answer = legacy_client.order_place(
            reference="ref-3", name="Ann", email="a@example.com", lines=[], card_number=APPROVED, timeout=0.5
        )
    finally:
        thread.join(timeout=10)
        server.close()
    assert answer.outcome == Outcome.UNKNOWN and answer.retryable
    assert taken and taken[0].startswith(b"POST /legacy-api/orders ")


def test_a_request_the_network_delivers_after_the_client_gave_up_places_nothing(served, rod, settings, live_server):
    """The client's timeout ends, the answer is unknown, and the lookup then finds no order: that
    must stay true when the request reaches the legacy API after all (it carries place_before)."""
    proxy = DelayProxy(urlparse(live_server.url).port, delay=2)
    settings.LEGACY_API_URL = f"http://127.0.0.1:{proxy.port}/legacy-api"
    try:
        answer = legacy_client.order_place(
            reference="ref-late", name="Ann", email="a@example.com", lines=[{"product": "rod", "quantity": 1}],
            card_number=APPROVED, timeout=0.5,
        )  # fmt: skip
        assert answer.outcome == Outcome.UNKNOWN
        settings.LEGACY_API_URL = served
        assert legacy_client.order_find(reference="ref-late", caller="storefront").outcome == Outcome.NOT_FOUND
        assert proxy.forwarded.wait(10)  # and now the request arrives
    finally:
        proxy.close()
    assert legacy_client.order_find(reference="ref-late", caller="storefront").outcome == Outcome.NOT_FOUND
    assert not LegacyOrder.objects.exists() and not PaymentAuthorisation.objects.exists()
    rod.refresh_from_db()
    assert rod.stock == 3


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (201, {"id": 1, "number": "L00000001"}, Outcome.PLACED),
        (200, {"id": 1, "number": "L00000001"}, Outcome.PLACED),
        # A 2xx without the order (a proxy's page, a body cut short) may have placed it: asked again.
        (201, {"error": "unreadable", "body": "<html>Service</html>"}, Outcome.UNKNOWN),
        (200, {"data": ["L00000001"]}, Outcome.UNKNOWN),
        (201, {"id": 1}, Outcome.UNKNOWN),
        (201, {"id": 1, "number": ""}, Outcome.UNKNOWN),
        (201, {"id": "1", "number": "L00000001"}, Outcome.UNKNOWN),
        (402, {"error": "card_declined"}, Outcome.DECLINED),
        (408, {"error": "expired"}, Outcome.BUSY),
        (409, {"error": "out_of_stock"}, Outcome.OUT_OF_STOCK),
        (409, {"error": "in_progress"}, Outcome.IN_PROGRESS),
        (429, {"error": "throttled"}, Outcome.BUSY),
        (503, {"error": "over_capacity"}, Outcome.BUSY),
        (500, {"error": "unreadable"}, Outcome.BUSY),
        (504, {}, Outcome.UNKNOWN),
        (400, {"error": "invalid", "fields": {"lines": ["x"]}}, Outcome.INVALID),
        (422, {"error": "reference_reused"}, Outcome.REFERENCE_REUSED),
        (401, {"error": "unauthenticated"}, Outcome.REFUSED),
        (403, {"error": "forbidden"}, Outcome.REFUSED),
    ],
)
def test_every_status_maps_to_one_outcome(status, body, outcome):
    assert order_answer(LegacyResponse(status=status, data=body)).outcome == outcome


def test_a_lookup_finds_the_callers_order_by_reference_and_places_none(served, rod):
    placed = legacy_client.order_place(
        reference="ref-4",
        name="Ann",
        email="ann@example.com",
        lines=[{"product": "rod", "quantity": 1}],
        card_number=APPROVED,
        caller="hotpath",
    )

    found = legacy_client.order_find(reference="ref-4", caller="hotpath")
    elsewhere = legacy_client.order_find(reference="ref-4", caller="storefront")
    nowhere = legacy_client.order_find(reference="ref-5", caller="hotpath")

    assert (found.outcome, found.data["number"]) == (Outcome.PLACED, placed.data["number"])
    assert (elsewhere.outcome, nowhere.outcome) == (Outcome.NOT_FOUND, Outcome.NOT_FOUND)
    rod.refresh_from_db()
    assert rod.stock == 2


def test_a_lookup_with_a_token_the_legacy_api_does_not_know_is_refused(served, settings):
    settings.LEGACY_API_TOKENS = {**settings.LEGACY_API_TOKENS, "hotpath": "not-a-token"}

    assert legacy_client.order_find(reference="ref-6", caller="hotpath").outcome == Outcome.REFUSED


def test_a_lookup_that_cannot_reach_the_legacy_api_is_not_sent(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.LEGACY_API_URL = f"http://127.0.0.1:{probe.getsockname()[1]}/legacy-api"

    assert legacy_client.order_find(reference="ref-6", caller="hotpath").outcome == Outcome.NOT_SENT


def test_a_legacy_api_without_the_lookup_is_never_taken_for_no_order(served, settings):
    settings.LEGACY_API_URL = f"{served}/older"  # every path under it answers 404 not_found

    assert legacy_client.order_find(reference="ref-7", caller="hotpath").outcome == Outcome.REFUSED


def test_a_legacy_api_whose_clock_runs_ahead_refuses_as_expired_and_is_logged(served, rod, monkeypatch, caplog):
    """Ahead by more than the timeout, it would refuse every order as arrived too late: the
    client, told so while it still waited, says whose clock is off."""
    ahead = timezone.now() + timedelta(minutes=5)
    monkeypatch.setattr(services.timezone, "now", lambda: ahead)

    answer = place()

    assert answer.outcome == Outcome.BUSY and answer.status == 408
    assert not LegacyOrder.objects.exists() and not PaymentAuthorisation.objects.exists()
    assert any("runs ahead" in record.getMessage() for record in caplog.records)
