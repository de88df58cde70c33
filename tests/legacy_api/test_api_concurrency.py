"""The legacy API under real concurrency: a real gunicorn (two worker processes, threads) on
PostgreSQL, hit by many clients released at once. No oversell, no order placed or authorised
twice, held units only for the orders naming their hold."""

from __future__ import annotations

import json
import threading

import pytest
import urllib3

from legacy_api.models import Hold, Order, OrderLine, PaymentAuthorisation
from shop.models import Product
from tests.legacy_api.conftest import bearer

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def legacy_url(processes, process_env) -> str:
    # Capacity well above the clients, so that shedding plays no part in what is measured.
    env = {**process_env, "LEGACY_CAPACITY": "64"}
    return processes.gunicorn("config.wsgi_legacy", env, workers=2, threads=8, name="legacy")


def post_all_at_once(
    url: str, bodies: list[dict], *, path: str = "/legacy-api/orders", callers: list[str] | None = None
) -> list[tuple[int, dict]]:
    """POSTs every body from its own thread, all released together, each with its caller's token
    (the storefront's unless `callers` says); the answers in body order."""
    callers = callers or ["storefront"] * len(bodies)
    http = urllib3.PoolManager(maxsize=len(bodies))
    barrier = threading.Barrier(len(bodies))
    answers: list[tuple[int, dict] | None] = [None] * len(bodies)

    def client(index: int) -> None:
        barrier.wait()
        response = http.request(
            "POST",
            f"{url}{path}",
            body=json.dumps(bodies[index]).encode(),
            headers={"Content-Type": "application/json", **bearer(callers[index])},
            timeout=60,
        )
        answers[index] = (response.status, response.json())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert None not in answers
    return answers  # type: ignore[return-value]


def test_fifty_buyers_for_ten_rods_get_ten_orders_and_stock_ends_at_zero(legacy_url, order_body, muskie_rod):
    bodies = [
        order_body(reference=f"rush-{i:02d}", lines=[{"product": "muskie-casting-rod", "quantity": 1}])
        for i in range(50)
    ]

    answers = post_all_at_once(legacy_url, bodies)

    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 10
    assert statuses.count(409) == 40
    assert all(
        body["error"] == "out_of_stock" and body["product"] == "muskie-casting-rod" for s, body in answers if s == 409
    )
    assert Product.objects.get(pk=muskie_rod.pk).stock == 0
    assert Order.objects.count() == 10
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 10
    placed = {body["reference"] for status, body in answers if status == 201}
    assert placed == set(Order.objects.values_list("reference", flat=True))


def test_twenty_posts_of_one_reference_place_one_order_authorised_once(legacy_url, order_body, muskie_rod):
    answers = post_all_at_once(legacy_url, [order_body(reference="double-click")] * 20)

    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 1
    # The others were answered with that order, or told it was being placed and to retry.
    assert all(
        status == 200 or (status == 409 and body["error"] == "in_progress") for status, body in answers if status != 201
    )
    assert len({body["id"] for status, body in answers if status in (200, 201)}) == 1
    assert Order.objects.count() == 1
    assert PaymentAuthorisation.objects.filter(approved=True).count() == 1
    assert Product.objects.get(pk=muskie_rod.pk).stock == 8


def test_buyers_with_and_without_the_hold_share_the_stock_without_oversell(legacy_url, order_body, muskie_rod):
    http = urllib3.PoolManager()
    created = http.request(
        "POST",
        f"{legacy_url}/legacy-api/holds",
        body=json.dumps({"reference": "sale-1", "product": "muskie-casting-rod", "quantity": 6}).encode(),
        headers={"Content-Type": "application/json", **bearer("hotpath")},
    )
    assert created.status == 201
    line = [{"product": "muskie-casting-rod", "quantity": 1}]
    bodies = [order_body(reference=f"sale-{i:02d}", lines=line, hold="sale-1") for i in range(20)]
    bodies += [order_body(reference=f"shop-{i:02d}", lines=line) for i in range(20)]

    # The sale's orders come from the hold's caller, the shop's from the storefront.
    answers = post_all_at_once(legacy_url, bodies, callers=["hotpath"] * 20 + ["storefront"] * 20)

    placed = [body for status, body in answers if status == 201]
    assert sum(body["hold"] == "sale-1" for body in placed) == 6
    assert sum(body["hold"] is None for body in placed) == 4
    assert all(body["error"] == "out_of_stock" for status, body in answers if status != 201)
    rod = Product.objects.get(pk=muskie_rod.pk)
    assert (rod.stock, rod.held) == (0, 0)
    assert Hold.objects.get(reference="sale-1").quantity == 0
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 10
    assert PaymentAuthorisation.objects.filter(approved=True, voided_at__isnull=True).count() == 10


def test_racing_holds_never_hold_more_than_is_on_hand(legacy_url, muskie_rod):
    bodies = [{"reference": f"hold-{i:02d}", "product": "muskie-casting-rod", "quantity": 3} for i in range(12)]

    answers = post_all_at_once(legacy_url, bodies, path="/legacy-api/holds", callers=["hotpath"] * len(bodies))

    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 3
    assert all(body["error"] == "out_of_stock" and body["available"] < 3 for s, body in answers if s == 409)
    rod = Product.objects.get(pk=muskie_rod.pk)
    assert (rod.stock, rod.held) == (10, 9)
    assert sum(Hold.objects.values_list("quantity", flat=True)) == 9


def test_service_reports_no_caller_above_its_capacity_when_given_less(legacy_url, order_body, muskie_rod):
    http = urllib3.PoolManager()
    http.request("POST", f"{legacy_url}/legacy-api/stats/reset", headers=bearer("merchant"))
    for i in range(3):
        body = order_body(reference=f"calm-{i}", lines=[{"product": "muskie-casting-rod", "quantity": 1}])
        response = http.request(
            "POST",
            f"{legacy_url}/legacy-api/orders",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-Legacy-Caller": "storefront", **bearer("hotpath")},
        )
        assert response.status == 201

    stats = http.request("GET", f"{legacy_url}/legacy-api/stats", headers=bearer("merchant")).json()
    # The caller is the token's, whatever a header claims.
    callers = stats.pop("callers")
    assert callers["hotpath"] == {"inflight": 0, "peak_inflight": 1, "shed": 0}
    assert callers["storefront"] == {"inflight": 0, "peak_inflight": 0, "shed": 0}
    assert stats == {
        "capacity": 64,
        "inflight": 0,
        "peak_inflight": 1,
        "shed": 0,
        "authorisations": 3,
        "voids": 0,
        "declines": 0,
    }


def test_orders_drawing_on_a_hold_while_it_is_resized_keep_held_in_step(legacy_url, order_body, muskie_rod):
    http = urllib3.PoolManager(maxsize=16)
    headers = {"Content-Type": "application/json", **bearer("hotpath")}
    hold_url = f"{legacy_url}/legacy-api/holds"
    body = {"reference": "sale-2", "product": "muskie-casting-rod", "quantity": 8}
    assert http.request("POST", hold_url, body=json.dumps(body).encode(), headers=headers).status == 201
    line = [{"product": "muskie-casting-rod", "quantity": 1}]
    barrier = threading.Barrier(13)
    answers: list[int] = []

    def buyer(index: int) -> None:
        barrier.wait()
        order = order_body(reference=f"resize-{index:02d}", lines=line, hold="sale-2")
        response = http.request(
            "POST", f"{legacy_url}/legacy-api/orders", body=json.dumps(order).encode(), headers=headers, timeout=60
        )
        answers.append(response.status)

    def merchant() -> None:
        barrier.wait()
        # The sale's hold is set to 5 while its buyers are being placed.
        http.request("PATCH", f"{hold_url}/sale-2", body=b'{"quantity": 5}', headers=headers, timeout=60)

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(12)] + [threading.Thread(target=merchant)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    placed = answers.count(201)
    assert set(answers) <= {201, 409}
    hold = Hold.objects.get(reference="sale-2")
    rod = Product.objects.get(pk=muskie_rod.pk)
    # PATCH sets what the hold keeps from then on: 5 more after however many were placed before it.
    assert 5 <= placed <= 10
    assert rod.stock == 10 - placed
    assert rod.held == hold.quantity <= 5
    assert Order.objects.filter(hold=hold).count() == placed
