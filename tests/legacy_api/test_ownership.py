"""Holds and orders are their caller's. The hold endpoints are the hot path's alone: any other
caller's token is 403 on every one of them, whether the hold exists or not, and changes nothing;
an order by another caller naming the sale's hold is 400 on `hold`, as for an unknown one, and
draws nothing. No caller reads an order it did not place, nor finds it by its reference, so the
hot path's sale keeps the units it promised its buyers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from legacy_api.models import Hold, Order, OrderReader, PaymentAuthorisation
from legacy_api.payments import payment_authorise
from shop.models import Product
from tests.legacy_api.conftest import ORDERS_URL, pending

pytestmark = pytest.mark.django_db

HOLDS_URL = "/legacy-api/holds"
LOOKUP_URL = f"{ORDERS_URL}/lookup"
SALE = {"reference": "sale-1", "product": "muskie-casting-rod", "quantity": 6}
ONE_ROD = [{"product": "muskie-casting-rod", "quantity": 1}]


def post(client: Client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def answer(response) -> tuple[int, dict]:
    return response.status_code, response.json()


def hold_calls(client: Client) -> dict[str, tuple[int, dict]]:
    """Every hold endpoint, called on the hold "sale-1", and what it was answered."""
    return {
        "list": answer(client.get(HOLDS_URL)),
        "take": answer(post(client, HOLDS_URL, {**SALE, "quantity": 1_000_000})),
        "get": answer(client.get(f"{HOLDS_URL}/sale-1")),
        "patch": answer(
            client.patch(
                f"{HOLDS_URL}/sale-1", data=json.dumps({"quantity": 1_000_000}), content_type="application/json"
            )
        ),
        "delete": answer(client.delete(f"{HOLDS_URL}/sale-1")),
    }


def held() -> tuple[list[tuple[str, str, int, str]], int, int]:
    """Every hold (caller, reference, quantity, status), and the rod's stock and held units."""
    rod = Product.objects.get(slug="muskie-casting-rod")
    holds = list(Hold.objects.order_by("pk").values_list("caller", "reference", "quantity", "status"))
    return holds, rod.stock, rod.held


@pytest.fixture
def sale_hold(hotpath_client, muskie_rod) -> Hold:
    """The sale's hold, taken as the sale takes it: with the hot path's token."""
    assert post(hotpath_client, HOLDS_URL, SALE).status_code == 201
    return Hold.objects.get()


# --- Holds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["client", "merchant_client"])
def test_every_hold_endpoint_is_403_to_any_caller_but_the_hot_path(request, hotpath_client, muskie_rod, other):
    caller = request.getfixturevalue(other)
    unknown = hold_calls(caller)
    assert post(hotpath_client, HOLDS_URL, SALE).status_code == 201

    taken = hold_calls(caller)

    assert taken == unknown  # nothing told about whether the hold exists
    assert {call: status for call, (status, _) in taken.items()} == dict.fromkeys(taken, 403)
    assert all(body["error"] == "forbidden" and "hot path" in body["detail"] for _, body in taken.values())
    assert held() == ([("hotpath", "sale-1", 6, "open")], 10, 6)


def test_the_storefront_takes_resizes_reads_lists_and_releases_no_hold(client, sale_hold):
    """The storefront's token cannot keep units from every channel: not by a hold of its own, nor
    by growing or releasing the sale's."""
    refused = [
        post(client, HOLDS_URL, {"reference": "mine", "product": "muskie-casting-rod", "quantity": 4}),
        post(client, HOLDS_URL, SALE),
        client.patch(f"{HOLDS_URL}/sale-1", data=json.dumps({"quantity": 1_000_000}), content_type="application/json"),
        client.patch(f"{HOLDS_URL}/sale-1", data=json.dumps({"quantity": 0}), content_type="application/json"),
        client.get(f"{HOLDS_URL}/sale-1"),
        client.get(HOLDS_URL),
        client.delete(f"{HOLDS_URL}/sale-1"),
    ]

    assert [response.status_code for response in refused] == [403] * len(refused)
    assert not any(b"sale-1" in response.content for response in refused)
    assert held() == ([("hotpath", "sale-1", 6, "open")], 10, 6)


def test_a_storefront_order_naming_the_sales_hold_is_400_on_hold_as_for_an_unknown_one(
    client, hotpath_client, merchant_client, order_body, muskie_rod
):
    """The storefront places orders, so an order of its naming the sale's hold is answered as the
    order endpoint answers any: the hold is not the storefront's, so to it the hold is unknown.
    The merchant places none at all."""
    grab = order_body(reference="grab-1", lines=ONE_ROD, hold="sale-1")
    unknown = answer(post(client, ORDERS_URL, grab))
    assert post(hotpath_client, HOLDS_URL, SALE).status_code == 201

    taken = answer(post(client, ORDERS_URL, grab))
    by_merchant = answer(post(merchant_client, ORDERS_URL, grab))

    assert taken == unknown
    assert taken[0] == 400 and list(taken[1]["fields"]) == ["hold"]
    assert (by_merchant[0], by_merchant[1]["error"]) == (403, "forbidden")
    assert not Order.objects.exists()
    assert held() == ([("hotpath", "sale-1", 6, "open")], 10, 6)


def test_another_caller_draws_nothing_from_the_sales_hold(client, sale_hold, order_body):
    response = post(
        client, ORDERS_URL, order_body(reference="grab-1", lines=[{**ONE_ROD[0], "quantity": 6}], hold="sale-1")
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["hold"]
    assert not Order.objects.exists()
    assert held() == ([("hotpath", "sale-1", 6, "open")], 10, 6)


def test_the_caller_that_took_the_hold_reads_resizes_draws_and_releases_it(hotpath_client, sale_hold, order_body):
    assert hotpath_client.get(f"{HOLDS_URL}/sale-1").json()["quantity"] == 6
    resized = hotpath_client.patch(
        f"{HOLDS_URL}/sale-1", data=json.dumps({"quantity": 4}), content_type="application/json"
    )
    placed = post(hotpath_client, ORDERS_URL, order_body(reference="sale-order-1", lines=ONE_ROD, hold="sale-1"))
    released = hotpath_client.delete(f"{HOLDS_URL}/sale-1")

    assert resized.status_code == 200 and resized.json()["quantity"] == 4
    assert placed.status_code == 201 and placed.json()["hold"] == "sale-1"
    assert released.status_code == 200 and released.json()["status"] == "released"
    rod = Product.objects.get(slug="muskie-casting-rod")
    assert (rod.stock, rod.held) == (9, 0)


def test_an_order_shows_its_hold_only_to_the_holds_caller(client, hotpath_client, sale_hold, order_body):
    body = order_body(reference="key-1", lines=ONE_ROD)
    placed = post(hotpath_client, ORDERS_URL, {**body, "hold": "sale-1"})
    replayed = post(client, ORDERS_URL, body)

    assert placed.json()["hold"] == "sale-1"
    assert replayed.status_code == 200 and replayed.json()["id"] == placed.json()["id"]
    assert replayed.json()["hold"] is None
    assert client.get(f"{ORDERS_URL}/{placed.json()['id']}").json()["hold"] is None


# --- Orders -----------------------------------------------------------------------------------


@pytest.fixture
def hot_order(hotpath_client, order_body, muskie_rod) -> dict:
    response = post(hotpath_client, ORDERS_URL, order_body(reference="key-1"))
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize("other", ["client", "merchant_client"])
def test_another_callers_order_is_404_as_an_order_that_does_not_exist(request, hot_order, other):
    caller = request.getfixturevalue(other)

    response = caller.get(f"{ORDERS_URL}/{hot_order['id']}")

    assert answer(response) == answer(caller.get(f"{ORDERS_URL}/{hot_order['id'] + 1}"))
    assert response.status_code == 404
    assert b"Ada" not in response.content and b"ada@example.com" not in response.content


def test_the_caller_that_placed_the_order_reads_it(hotpath_client, hot_order):
    response = hotpath_client.get(f"{ORDERS_URL}/{hot_order['id']}")

    assert response.status_code == 200
    assert response.json()["customer"] == {"name": "Ada Angler", "email": "ada@example.com"}


def test_orders_are_placed_for_the_caller_whose_token_placed_them(client, hot_order, order_body):
    post(client, ORDERS_URL, order_body(reference="shop-1", lines=ONE_ROD))

    assert dict(Order.objects.values_list("reference", "caller")) == {"key-1": "hotpath", "shop-1": "storefront"}


def test_the_placing_caller_replays_its_order_with_200(hotpath_client, hot_order, order_body):
    response = post(hotpath_client, ORDERS_URL, order_body(reference="key-1"))

    assert response.status_code == 200
    assert response.json()["id"] == hot_order["id"]
    assert not OrderReader.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"lines": ONE_ROD},
        {"customer": {"name": "Bob Bass", "email": "bob@example.com"}},
        {"payment": {"card_number": "5555555555554444"}},
    ],
)
def test_another_callers_reuse_of_a_reference_shows_nothing_of_the_order(client, hot_order, order_body, change):
    response = post(client, ORDERS_URL, order_body(reference="key-1", **change))

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "reference_reused"
    assert set(body) <= {"error", "detail", "fields"}
    assert (
        str(hot_order["id"]) not in response.content.decode() and hot_order["number"] not in response.content.decode()
    )
    assert client.get(f"{ORDERS_URL}/{hot_order['id']}").status_code == 404


def test_the_same_buyers_order_sent_by_another_caller_is_the_one_order(client, merchant_client, hot_order, order_body):
    """One Idempotency-Key is one order whichever side sends it (the storefront and the hot path's
    worker both may): the very body that placed it (the whole card number included) gets it, and
    that caller may read it from then on. Nobody else may."""
    replayed = post(client, ORDERS_URL, order_body(reference="key-1"))

    assert replayed.status_code == 200
    assert replayed.json()["id"] == hot_order["id"]
    assert Order.objects.count() == 1
    assert client.get(f"{ORDERS_URL}/{hot_order['id']}").status_code == 200
    assert merchant_client.get(f"{ORDERS_URL}/{hot_order['id']}").status_code == 404
    assert Order.objects.get().caller == "hotpath"


def test_the_merchant_sending_an_orders_very_body_is_403_and_gets_no_reading_of_it(
    merchant_client, hot_order, order_body
):
    response = post(merchant_client, ORDERS_URL, order_body(reference="key-1"))

    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert hot_order["number"] not in response.content.decode()
    assert not OrderReader.objects.exists()
    assert merchant_client.get(f"{ORDERS_URL}/{hot_order['id']}").status_code == 404


def test_an_order_kept_from_before_fingerprints_is_replayed_to_its_own_caller_only(
    client, hotpath_client, hot_order, order_body
):
    Order.objects.update(fingerprint="")

    other = post(client, ORDERS_URL, order_body(reference="key-1"))
    own = post(hotpath_client, ORDERS_URL, order_body(reference="key-1"))

    assert other.status_code == 422 and other.json()["error"] == "reference_reused"
    assert own.status_code == 200 and own.json()["id"] == hot_order["id"]
    assert client.get(f"{ORDERS_URL}/{hot_order['id']}").status_code == 404


# --- Looking an order up by its reference -----------------------------------------------------


def looked_up(client: Client, reference: str) -> list[dict]:
    response = client.get(LOOKUP_URL, {"reference": reference})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_caller_looks_its_order_up_by_reference_and_the_lookup_places_nothing(hotpath_client, hot_order):
    assert [order["id"] for order in looked_up(hotpath_client, "key-1")] == [hot_order["id"]]
    assert looked_up(hotpath_client, "key-1")[0]["number"] == hot_order["number"]
    assert looked_up(hotpath_client, "key-2") == []
    assert list(Order.objects.values_list("reference", flat=True)) == ["key-1"]


def test_another_callers_order_is_not_found_by_its_reference_until_it_sends_its_very_body(
    client, merchant_client, hot_order, order_body
):
    assert looked_up(client, "key-1") == []
    assert not OrderReader.objects.exists()
    merchant = merchant_client.get(LOOKUP_URL, {"reference": "key-1"})
    assert (merchant.status_code, merchant.json()["error"]) == (403, "forbidden")
    assert hot_order["number"] not in merchant.content.decode()

    post(client, ORDERS_URL, order_body(reference="key-1"))

    assert [order["id"] for order in looked_up(client, "key-1")] == [hot_order["id"]]


def test_a_reference_the_caller_is_still_placing_is_409_in_progress_and_a_dead_request_places_nothing(
    client, hotpath_client, muskie_rod
):
    pending("key-1", caller="hotpath", lease_seconds=60)
    pending("key-2", caller="hotpath", lease_seconds=-1)
    payment_authorise(key="key-2", card_number="4242424242424242", amount_cents=14999)
    pending("key-3", caller="storefront", lease_seconds=60)

    still = hotpath_client.get(LOOKUP_URL, {"reference": "key-1"})

    assert (still.status_code, still.json()["error"]) == (409, "in_progress") and still["Retry-After"]
    assert looked_up(hotpath_client, "key-2") == [] and looked_up(hotpath_client, "key-3") == []
    # The stalled request's row is gone, and what it authorised voided: its last write
    # (order_place's) can no longer place it, nor its card stay authorised.
    assert not Order.objects.filter(reference="key-2").exists()
    assert PaymentAuthorisation.objects.get(key="key-2").voided_at is not None
    assert Order.objects.filter(reference="key-3").exists()  # another caller's is not this lookup's to drop


def _place_stalled(muskie_rod, monkeypatch, *, reference: str, meanwhile) -> None:
    """Places `reference` as a request that stalls once authorised, while `meanwhile(reference)`
    happens to its row; it must raise InProgress."""
    from legacy_api import services

    real_cost = services._order_work_cost

    def stalled(reference):
        real_cost(reference)
        meanwhile(reference)

    monkeypatch.setattr(services, "_order_work_cost", stalled)
    with pytest.raises(services.InProgress):
        services.order_place(
            reference=reference,
            customer_name="Ada Angler",
            customer_email="ada@example.com",
            lines=[services.LineRequest(product=muskie_rod.slug, quantity=1)],
            card_number="4242424242424242",
            caller="hotpath",
        )


def _looked_up_once_its_lease_ended(reference: str) -> None:
    """Its lease ends and a lookup answers "no order", dropping its row."""
    from legacy_api import references

    Order.objects.filter(reference=reference).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert references.order_lookup(reference=reference, caller="hotpath") is None


def _place_stalled_past_a_lookup(muskie_rod, monkeypatch) -> None:
    _place_stalled(muskie_rod, monkeypatch, reference="key-stalled", meanwhile=_looked_up_once_its_lease_ended)


def test_a_request_that_stalled_past_a_lookup_places_nothing_and_voids_its_authorisation(muskie_rod, monkeypatch):
    """The lookup answered "no order" for a request whose lease had ended; the request, merely
    stalled, then wakes up: it must not place the order, nor leave its card authorised."""
    _place_stalled_past_a_lookup(muskie_rod, monkeypatch)

    assert not Order.objects.filter(reference="key-stalled").exists()
    assert not PaymentAuthorisation.objects.filter(key="key-stalled", voided_at__isnull=True, approved=True).exists()


def test_a_request_that_wakes_after_a_retry_authorised_voids_only_its_own_authorisation(muskie_rod, monkeypatch):
    """The stalled request wakes, finds no order, and voids what it authorised: in that instant
    a retry has claimed the reference afresh and been authorised. The retry's authorisation is
    the retry's to place its order with; the stalled request voids only its own."""
    from legacy_api import services

    real_replay = services.order_replay
    retried = {}

    def replayed_then_retried(**kwargs):
        existing = real_replay(**kwargs)
        retried["code"] = payment_authorise(
            key=kwargs["reference"], card_number="4242424242424242", amount_cents=14999
        ).code
        return existing

    monkeypatch.setattr(services, "order_replay", replayed_then_retried)
    _place_stalled_past_a_lookup(muskie_rod, monkeypatch)

    live = PaymentAuthorisation.objects.get(key="key-stalled", approved=True, voided_at__isnull=True)
    assert live.code == retried["code"]
    assert PaymentAuthorisation.objects.filter(key="key-stalled", voided_at__isnull=False).count() == 1


def test_a_request_that_wakes_after_a_retry_took_its_row_over_leaves_the_shared_authorisation(muskie_rod, monkeypatch):
    """The retry that took the stalled request's row over was given its authorisation; the
    retry has stalled too (its lease ended) when the first wakes. The authorisation is the
    retry's to place the order with: the first request must not void it."""

    def taken_over(reference):
        Order.objects.filter(reference=reference).update(
            lease_owner="the-retry", lease_until=timezone.now() - timedelta(seconds=1)
        )

    _place_stalled(muskie_rod, monkeypatch, reference="key-taken", meanwhile=taken_over)

    assert Order.objects.filter(reference="key-taken", lease_owner="the-retry").exists()
    assert PaymentAuthorisation.objects.get(key="key-taken").voided_at is None


def test_a_request_whose_row_a_lookup_dropped_before_it_authorised_authorises_nothing(muskie_rod, monkeypatch):
    """The request stalls after claiming the reference, before authorising; its lease ends and a
    lookup answers "no order", dropping its row. Waking, it must not authorise the card at all:
    in the instant before it voided that, a retry claiming the reference afresh would be handed
    the same live authorisation, and place its order on one about to be voided."""
    from legacy_api import services

    real_claim = services._order_claim

    def claimed_then_looked_up(**kwargs):
        pk = real_claim(**kwargs)
        _looked_up_once_its_lease_ended(kwargs["reference"])
        return pk

    monkeypatch.setattr(services, "_order_claim", claimed_then_looked_up)
    _place_stalled(muskie_rod, monkeypatch, reference="key-late", meanwhile=lambda reference: None)

    assert not Order.objects.filter(reference="key-late").exists()
    assert not PaymentAuthorisation.objects.filter(key="key-late").exists()


def test_a_refused_request_leaves_a_row_a_retry_took_over_and_its_authorisation_to_the_retry(muskie_rod):
    """A request refused after it was authorised (out of stock) drops its row and voids the
    authorisation; were its lease to have ended and a retry taken the row over, given that
    authorisation as its own, both are the retry's."""
    from legacy_api import services

    taken = pending("key-taken", caller="hotpath", lease_seconds=60)
    Order.objects.filter(pk=taken.pk).update(lease_owner="the-retry")
    payment_authorise(key="key-taken", card_number="4242424242424242", amount_cents=14999)
    mine = pending("key-mine", caller="hotpath", lease_seconds=60)
    payment_authorise(key="key-mine", card_number="4242424242424242", amount_cents=14999)

    services._claim_release(taken.pk, "a-request", reference="key-taken")
    services._claim_release(mine.pk, "a-request", reference="key-mine")

    assert Order.objects.filter(pk=taken.pk, lease_owner="the-retry").exists()
    assert PaymentAuthorisation.objects.get(key="key-taken").voided_at is None
    assert not Order.objects.filter(pk=mine.pk).exists()
    assert PaymentAuthorisation.objects.get(key="key-mine").voided_at is not None


@pytest.mark.parametrize("query", [{}, {"reference": ""}, {"reference": "no spaces"}, {"reference": "k" * 65}])
def test_a_lookup_without_a_valid_reference_is_400_naming_it(hotpath_client, query):
    response = hotpath_client.get(LOOKUP_URL, query)

    assert response.status_code == 400
    assert "reference" in response.json()["fields"]
