"""The stock of record's events in the unified log: an order placed, each change of a product's
stock or held, and each hold taken, resized or released, written in the transaction of the
change (none for a refused or rolled-back one), in the LEGO envelope, never with card data; and
the books: the deltas of a product's events add up to its change on hand."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path

import jsonschema
import pytest
import urllib3
from django.db import transaction

from events.models import Event
from legacy_api.holds import hold_create
from legacy_api.models import Order
from shop.models import Product, Supplier
from tests.legacy_api.conftest import APPROVED_CARD, DECLINED_CARD, ORDERS_URL, bearer

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "events/schema/envelope.schema.json").read_text())
HOLDS_URL = "/legacy-api/holds"


@pytest.fixture(autouse=True)
def _every_event_fits_the_envelope(request):
    marker = request.node.get_closest_marker("django_db")
    request.getfixturevalue("transactional_db" if marker and marker.kwargs.get("transaction") else "db")
    yield
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in Event.objects.all():
        validator.validate(event.envelope())


def events(**filters) -> list[Event]:
    return list(Event.objects.filter(**filters).order_by("position"))


def stock_events(product: str = "muskie-casting-rod") -> list[dict]:
    return [e.data for e in events(type="STOCK", subtype="PRODUCT", status="CHANGED", data__product=product)]


def post_hold(client, reference: str = "sale-1", quantity: int = 6):
    body = {"reference": reference, "product": "muskie-casting-rod", "quantity": quantity}
    return client.post(HOLDS_URL, data=json.dumps(body), content_type="application/json")


def patch_hold(client, reference: str, quantity: int):
    return client.patch(
        f"{HOLDS_URL}/{reference}", data=json.dumps({"quantity": quantity}), content_type="application/json"
    )


pytestmark = pytest.mark.django_db


def test_an_order_placed_writes_its_order_event_and_one_stock_event_per_line(
    post_order, order_body, muskie_rod, tourney_rod
):
    muskie_rod.supplier = Supplier.objects.create(name="Northwoods Rod Company", email="orders@northwoods.example")
    muskie_rod.save()
    lines = [{"product": "muskie-casting-rod", "quantity": 2}, {"product": "tourney-casting-rod", "quantity": 3}]
    response = post_order(order_body(lines=lines))

    assert response.status_code == 201
    order = Order.objects.get()
    (placed,) = events(source="legacy.orders")
    assert (placed.type, placed.subtype, placed.status) == ("ORDER", "RECORD", "PLACED")
    assert placed.data == {
        "number": order.number,
        "reference": "ref-0001",
        "lines": [
            {
                "product": "muskie-casting-rod",
                "quantity": 2,
                "unit_price_cents": 14999,
                "supplier": "Northwoods Rod Company",
                "category": "rods",
            },
            {
                "product": "tourney-casting-rod",
                "quantity": 3,
                "unit_price_cents": 4999,
                "supplier": None,
                "category": "rods",
            },
        ],
        "total_cents": 2 * 14999 + 3 * 4999,
        "hold": None,
    }
    assert stock_events() == [
        {
            "product": "muskie-casting-rod",
            **{"on_hand": 8, "held": 0, "available": 8, "delta": -2, "held_delta": 0},
            **{"reason": "order", "order": order.number},
        }
    ]
    assert [e["delta"] for e in stock_events("tourney-casting-rod")] == [-3]
    assert {e.source for e in events(type="STOCK")} == {"legacy.stock"}


def test_no_event_carries_card_data(post_order, order_body, muskie_rod):
    post_order(order_body())

    logged = json.dumps([e.envelope() for e in events()])
    assert Event.objects.count() == 2
    assert APPROVED_CARD not in logged
    assert "card" not in logged


@pytest.mark.parametrize(
    "change",
    [
        {"payment": {"card_number": DECLINED_CARD}},
        {"lines": [{"product": "muskie-casting-rod", "quantity": 11}]},
        {"lines": [{"product": "no-such-rod", "quantity": 1}]},
        {"hold": "no-such-hold"},
    ],
)
def test_a_refused_order_writes_no_event(post_order, order_body, muskie_rod, change):
    response = post_order(order_body(**change))

    assert response.status_code in (400, 402, 409)
    assert Event.objects.count() == 0


def test_a_replayed_order_writes_no_second_event(post_order, order_body, muskie_rod):
    assert post_order(order_body()).status_code == 201
    assert post_order(order_body()).status_code == 200

    assert len(events(source="legacy.orders")) == 1
    assert len(stock_events()) == 1


def test_an_order_drawn_on_a_hold_takes_on_hand_and_held_together(hotpath_client, order_body, muskie_rod):
    post_hold(hotpath_client, quantity=6)
    response = hotpath_client.post(
        ORDERS_URL, data=json.dumps(order_body(hold="sale-1")), content_type="application/json"
    )

    assert response.status_code == 201
    (placed,) = events(source="legacy.orders")
    assert placed.data["hold"] == "sale-1"
    drawn = stock_events()[-1]
    assert drawn == {
        "product": "muskie-casting-rod",
        **{"on_hand": 8, "held": 4, "available": 4, "delta": -2, "held_delta": -2},
        **{"reason": "order", "order": placed.data["number"], "hold": "sale-1"},
    }


def test_a_hold_taken_resized_and_released_writes_a_hold_and_a_stock_event_each(hotpath_client, muskie_rod):
    assert post_hold(hotpath_client, quantity=6).status_code == 201
    assert patch_hold(hotpath_client, "sale-1", 9).status_code == 200
    assert patch_hold(hotpath_client, "sale-1", 4).status_code == 200
    assert hotpath_client.delete(f"{HOLDS_URL}/sale-1").status_code == 200

    holds = events(type="HOLD")
    assert {e.source for e in holds} == {"legacy.holds"}
    assert [(e.status, e.data["quantity"], e.data["change"]) for e in holds] == [
        ("TAKEN", 6, 6),
        ("RESIZED", 9, 3),
        ("RESIZED", 4, -5),
        ("RELEASED", 0, -4),
    ]
    assert all(e.data == {**e.data, "reference": "sale-1", "product": "muskie-casting-rod"} for e in holds)
    assert [(e["reason"], e["held_delta"], e["held"], e["available"], e["delta"]) for e in stock_events()] == [
        ("hold_taken", 6, 6, 4, 0),
        ("hold_resized", 3, 9, 1, 0),
        ("hold_resized", -5, 4, 6, 0),
        ("hold_released", -4, 0, 10, 0),
    ]
    assert all(e["hold"] == "sale-1" for e in stock_events())


def test_a_hold_replayed_resized_to_its_size_or_released_again_writes_nothing_more(hotpath_client, muskie_rod):
    post_hold(hotpath_client, quantity=6)
    post_hold(hotpath_client, quantity=6)
    patch_hold(hotpath_client, "sale-1", 6)
    hotpath_client.delete(f"{HOLDS_URL}/sale-1")
    hotpath_client.delete(f"{HOLDS_URL}/sale-1")

    assert [e.status for e in events(type="HOLD")] == ["TAKEN", "RELEASED"]
    assert len(stock_events()) == 2


@pytest.mark.parametrize("refused", ["too_large", "reused", "grow_past_stock"])
def test_a_refused_hold_writes_no_event(hotpath_client, muskie_rod, tourney_rod, refused):
    post_hold(hotpath_client, quantity=6)
    before = Event.objects.count()

    if refused == "too_large":
        response = post_hold(hotpath_client, reference="sale-2", quantity=5)
    elif refused == "reused":
        response = post_hold(hotpath_client, quantity=7)
    else:
        response = patch_hold(hotpath_client, "sale-1", 11)

    assert response.status_code in (409, 422)
    assert Event.objects.count() == before


def test_a_rolled_back_change_writes_no_event(muskie_rod):
    with pytest.raises(RuntimeError), transaction.atomic():
        hold_create(reference="sale-1", product="muskie-casting-rod", quantity=6)
        assert Event.objects.count() == 2  # written, and going with the change
        raise RuntimeError("the caller's transaction fails after the hold")

    assert Event.objects.count() == 0
    assert Product.objects.get(pk=muskie_rod.pk).held == 0


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_books_of_orders_drawn_on_a_hold_add_up(processes, process_env, order_body, muskie_rod, tourney_rod):
    """Buyers draw on a hold while it is resized and others buy from open stock, on a real
    gunicorn: each change committed apart, each with its events in its own transaction."""
    legacy_url = processes.gunicorn(
        "config.wsgi_legacy", {**process_env, "LEGACY_CAPACITY": "64"}, workers=2, threads=8, name="legacy"
    )
    http = urllib3.PoolManager(maxsize=20)
    headers = {"Content-Type": "application/json", **bearer("hotpath")}
    body = json.dumps({"reference": "sale-9", "product": "muskie-casting-rod", "quantity": 7}).encode()
    assert http.request("POST", f"{legacy_url}{HOLDS_URL}", body=body, headers=headers).status == 201
    barrier = threading.Barrier(15)
    answers: list[int] = []

    def buyer(index: int, hold: str | None) -> None:
        lines = [{"product": "muskie-casting-rod", "quantity": 1}, {"product": "tourney-casting-rod", "quantity": 2}]
        order = order_body(reference=f"books-{index:02d}", lines=lines, **({"hold": hold} if hold else {}))
        barrier.wait()
        response = http.request(
            "POST", f"{legacy_url}/legacy-api/orders", body=json.dumps(order).encode(), headers=headers, timeout=60
        )
        answers.append(response.status)

    def merchant() -> None:
        barrier.wait()
        http.request("PATCH", f"{legacy_url}{HOLDS_URL}/sale-9", body=b'{"quantity": 4}', headers=headers, timeout=60)

    threads = [threading.Thread(target=buyer, args=(i, "sale-9" if i < 10 else None)) for i in range(14)]
    threads.append(threading.Thread(target=merchant))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(answers) <= {201, 409} and answers.count(201) >= 1
    placed = list(Order.objects.filter(status=Order.Status.PLACED).values_list("number", flat=True))
    assert sorted(e.data["number"] for e in events(source="legacy.orders")) == sorted(placed)
    for product, start in ((muskie_rod, 10), (tourney_rod, 25)):
        product.refresh_from_db()
        logged = stock_events(product.slug)
        assert sum(e["delta"] for e in logged) == product.stock - start
        assert sum(e["held_delta"] for e in logged) == product.held
        assert sorted(e["order"] for e in logged if e["reason"] == "order") == sorted(placed)
        # The last change of the product, whichever committed last, says where it ended.
        assert (product.stock, product.held) in {(e["on_hand"], e["held"]) for e in logged}
    for number, xids in _xids_by_order().items():
        assert len(xids) == 1, f"{number}'s events were written in {len(xids)} transactions"
    stock_xids = {e.xid for e in events(type="STOCK", data__reason__startswith="hold_")}
    assert {e.xid for e in events(type="HOLD")} == stock_xids
    # The resize may find nothing to change (or be refused), depending on how many drew first.
    assert len(stock_xids) == len(events(type="HOLD")) >= 1


def _xids_by_order() -> dict[str, set[int]]:
    xids: dict[str, set[int]] = defaultdict(set)
    for event in events():
        number = event.data.get("number") or event.data.get("order")
        if number:
            xids[number].add(event.xid)
    return xids
