"""One authorisation per order: the pending row committed before the card is authorised makes a
concurrent duplicate wait (409 in_progress) instead of authorising again; a pending row whose
worker died is taken over after its lease, with the authorisation already given."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from legacy_api import references, services
from legacy_api.models import Order, PaymentAuthorisation
from legacy_api.payments import payment_authorise
from legacy_api.references import LineRequest, order_fingerprint
from tests.legacy_api.conftest import APPROVED_CARD


def pending_row(order_body, *, lease_until) -> Order:
    """The row a request working on `order_body()` has committed before authorising the card."""
    body = order_body()
    return Order.objects.create(
        reference=body["reference"],
        status=Order.Status.PENDING,
        fingerprint=order_fingerprint(
            customer_name=body["customer"]["name"],
            customer_email=body["customer"]["email"],
            lines=[LineRequest(**line) for line in body["lines"]],
            card_number=body["payment"]["card_number"],
        ).value,
        customer_name=body["customer"]["name"],
        customer_email=body["customer"]["email"],
        card_last4="4242",
        authorisation_code="",
        total_cents=0,
        processing_ms=0,
        lease_owner="first-worker",
        lease_until=lease_until,
    )


def approvals() -> int:
    return PaymentAuthorisation.objects.filter(approved=True).count()


@pytest.mark.django_db
def test_a_retry_while_the_order_is_worked_on_is_told_to_wait_and_authorises_nothing(
    post_order, order_body, muskie_rod
):
    pending_row(order_body, lease_until=timezone.now() + timedelta(minutes=1))

    response = post_order(order_body())

    assert response.status_code == 409
    assert response.json()["error"] == "in_progress"
    assert response["Retry-After"] == "1"
    assert approvals() == 0
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 10


@pytest.mark.django_db
def test_a_pending_order_is_not_shown_as_an_order(client, order_body, muskie_rod):
    row = pending_row(order_body, lease_until=timezone.now() + timedelta(minutes=1))

    assert client.get(f"/legacy-api/orders/{row.pk}").status_code == 404


@pytest.mark.django_db
def test_a_retry_after_the_lease_ended_takes_over_with_the_authorisation_already_given(
    post_order, order_body, muskie_rod
):
    # The first request authorised the card, then its process died before placing the order.
    pending_row(order_body, lease_until=timezone.now() - timedelta(seconds=1))
    given = payment_authorise(key="ref-0001", card_number=APPROVED_CARD, amount_cents=2 * 14999)

    response = post_order(order_body())

    assert response.status_code == 201
    assert Order.objects.get().authorisation_code == given.code
    assert approvals() == Order.objects.filter(status=Order.Status.PLACED).count() == 1
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 8


@pytest.mark.django_db
def test_a_declined_card_leaves_no_pending_row_behind(post_order, order_body, muskie_rod):
    response = post_order(order_body(payment={"card_number": "4000000000000002"}))

    assert response.status_code == 402
    assert not Order.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_retry_arriving_while_the_first_request_works_gets_the_one_order_authorised_once(
    client, order_body, muskie_rod, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: two connections working at once")
    working, finish = threading.Event(), threading.Event()
    real_cost = services._order_work_cost

    def slow_cost(reference: str) -> None:
        # The first request stops here, card authorised and pending row committed, until told.
        working.set()
        assert finish.wait(timeout=60)
        real_cost(reference)

    monkeypatch.setattr(services, "_order_work_cost", slow_cost)
    body = json.dumps(order_body())
    answers: list = []

    def first() -> None:
        try:
            answers.append(client.post("/legacy-api/orders", data=body, content_type="application/json"))
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert working.wait(timeout=60)
    retry = client.post("/legacy-api/orders", data=body, content_type="application/json")
    finish.set()
    thread.join()
    again = client.post("/legacy-api/orders", data=body, content_type="application/json")

    assert (retry.status_code, retry.json()["error"]) == (409, "in_progress")
    assert answers[0].status_code == 201
    assert (again.status_code, again.json()["id"]) == (200, answers[0].json()["id"])
    assert approvals() == Order.objects.count() == 1


def _blocked_on_a_lock(timeout: float = 30.0) -> bool:
    """Whether another connection waits on a lock, within `timeout` seconds. The activity view is
    read afresh each time: inside a transaction it is otherwise a snapshot."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.01)
    return False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lookup_arriving_while_the_card_is_authorised_waits_and_voids_it_with_the_row(muskie_rod, monkeypatch):
    """The request authorises with its pending row locked: a lookup that finds the lease ended in
    that instant waits for the authorisation, then drops the row and voids it. The request then
    places nothing, and no authorisation is left live for a retry to be handed."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: two connections working at once")
    real_claim, real_authorise = services._order_claim, services.payment_authorise
    outcomes: list = []

    def claimed_as_the_lease_ends(**kwargs):
        pk = real_claim(**kwargs)
        Order.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
        return pk

    def authorise_as_the_lease_ends(**kwargs):
        def lookup() -> None:
            try:
                outcomes.append(references.order_lookup(reference=kwargs["key"], caller="hotpath"))
            finally:
                connection.close()

        thread = threading.Thread(target=lookup)
        thread.start()
        outcomes.append(_blocked_on_a_lock())
        given = real_authorise(**kwargs)
        authorising.append(thread)
        return given

    authorising: list[threading.Thread] = []
    monkeypatch.setattr(services, "_order_claim", claimed_as_the_lease_ends)
    monkeypatch.setattr(services, "payment_authorise", authorise_as_the_lease_ends)
    with pytest.raises(services.InProgress):
        services.order_place(
            reference="key-racing",
            customer_name="Ada Angler",
            customer_email="ada@example.com",
            lines=[LineRequest(product=muskie_rod.slug, quantity=1)],
            card_number=APPROVED_CARD,
            caller="hotpath",
        )
    authorising[0].join()

    assert outcomes == [True, None]  # the lookup waited on the row, then answered "no order"
    assert not Order.objects.filter(reference="key-racing").exists()
    assert PaymentAuthorisation.objects.filter(key="key-racing", approved=True).count() == 1
    assert not PaymentAuthorisation.objects.filter(key="key-racing", voided_at__isnull=True).exists()


def test_a_takeover_at_another_price_is_authorised_for_the_price_it_charges(muskie_rod):
    """A request priced at 99.99 claimed the reference, was authorised for it and died; the
    buyer's retry, priced at 50.00 (the page's price after a change), takes the row over. It
    charges what it authorises: the dead request's authorisation is voided, one for its own
    amount taken, and the key still has one live authorisation."""
    from tests.legacy_api.conftest import pending

    first = [LineRequest(product="muskie-casting-rod", quantity=2, unit_price_cents=9999)]
    fingerprint = order_fingerprint(
        customer_name="Ada Angler", customer_email="ada@example.com", lines=first, card_number=APPROVED_CARD
    ).value
    pending("ref-0001", caller="storefront", lease_seconds=-5, fingerprint=fingerprint)
    payment_authorise(key="ref-0001", card_number=APPROVED_CARD, amount_cents=2 * 9999)

    order, created = services.order_place(
        reference="ref-0001",
        customer_name="Ada Angler",
        customer_email="ada@example.com",
        lines=[LineRequest(product="muskie-casting-rod", quantity=2, unit_price_cents=5000)],
        card_number=APPROVED_CARD,
        caller="storefront",
    )
    assert created and order.total_cents == 2 * 5000
    live = PaymentAuthorisation.objects.filter(key="ref-0001", approved=True, voided_at__isnull=True)
    assert [a.amount_cents for a in live] == [2 * 5000]
    assert live.get().code == order.authorisation_code
    assert PaymentAuthorisation.objects.filter(key="ref-0001", voided_at__isnull=False).count() == 1


# --- A request delivered after its caller gave up on it (place_before) ------------------------


def _iso(moment) -> str:
    return moment.isoformat()


@pytest.mark.django_db
def test_a_request_arriving_after_its_place_before_places_nothing_and_names_the_field(
    post_order, order_body, muskie_rod
):
    """Its caller stopped waiting, and may have been told by a lookup that nothing was placed:
    placed now, the order would be charged and recorded nowhere."""
    response = post_order(order_body(place_before=_iso(timezone.now() - timedelta(seconds=1))))

    assert response.status_code == 408, response.content
    body = response.json()
    assert body["error"] == "expired"
    assert "place_before" in body["fields"]
    assert not Order.objects.exists()
    assert not PaymentAuthorisation.objects.exists()
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 10


@pytest.mark.django_db
def test_a_request_in_time_places_the_order_and_place_before_is_not_part_of_its_identity(
    post_order, order_body, muskie_rod
):
    first = post_order(order_body(place_before=_iso(timezone.now() + timedelta(seconds=10))))
    # The same order sent again, later and with a passed place_before: the order already placed.
    again = post_order(order_body(place_before=_iso(timezone.now() - timedelta(seconds=1))))

    assert first.status_code == 201, first.content
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert approvals() == 1


@pytest.mark.django_db
def test_a_late_request_does_not_take_over_a_dead_request_s_claim(post_order, order_body, muskie_rod):
    pending_row(order_body, lease_until=timezone.now() - timedelta(seconds=1))

    response = post_order(order_body(place_before=_iso(timezone.now() - timedelta(seconds=1))))

    assert response.status_code == 408
    assert Order.objects.get().status == Order.Status.PENDING
    assert approvals() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01T00:00:00Z", 12])
def test_a_malformed_place_before_is_400_naming_it(post_order, order_body, muskie_rod, value):
    response = post_order(order_body(place_before=value))

    assert response.status_code == 400
    assert "place_before" in response.json()["fields"]
    assert not Order.objects.exists()
