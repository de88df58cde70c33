"""The sale's hold and the orders drawn on it, through the client as the shop's sides call it
(the sale and its worker with the hot path's token, the monolith with the storefront's), against
the real API served over HTTP: the hold is the hot path's alone, and one buyer's order sent by
both sides is still one order."""

import pytest

import legacy_client
from legacy_client import LegacyRefused, Outcome
from shop.models import Category, Product
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED = "4242424242424242"


@pytest.fixture
def rod(db) -> Product:
    rods = Category.objects.create(name="Rods", slug="rods")
    return Product.objects.create(category=rods, title="Rod", slug="rod", price_cents=4999, stock=10)


@pytest.fixture
def sale(settings, live_server, rod) -> str:
    """The sale's hold, taken as `sale open` takes it."""
    legacy_serve(settings, live_server)
    legacy_client.hold_create(reference="sale-rod", product="rod", quantity=4)
    return "sale-rod"


def place(*, caller: str, reference: str = "key-1", hold: str | None = None):
    return legacy_client.order_place(
        reference=reference,
        name="Ann",
        email="ann@example.com",
        lines=[{"product": "rod", "quantity": 1}],
        card_number=APPROVED,
        caller=caller,
        hold=hold,
    )


def test_the_sales_worker_draws_on_the_sales_hold_and_the_sale_resizes_and_releases_it(sale):
    answer = place(caller="hotpath", hold=sale)

    assert answer.outcome == Outcome.PLACED and answer.data["hold"] == sale
    assert legacy_client.hold_get(reference=sale).quantity == 3
    assert legacy_client.hold_set(reference=sale, quantity=2).quantity == 2
    legacy_client.hold_release(reference=sale)
    assert legacy_client.hold_get(reference=sale).status == "released"


def test_the_storefront_neither_draws_on_nor_sees_nor_changes_the_sales_hold(sale):
    answer = place(caller="storefront", hold=sale)

    assert answer.outcome == Outcome.INVALID and "hold" in answer.fields
    # The hold endpoints are the hot path's alone: the storefront's token is refused outright.
    calls = [
        lambda: legacy_client.hold_create(reference="mine", product="rod", quantity=1, caller="storefront"),
        lambda: legacy_client.hold_get(reference=sale, caller="storefront"),
        lambda: legacy_client.holds_list(caller="storefront"),
        lambda: legacy_client.hold_set(reference=sale, quantity=0, caller="storefront"),
        lambda: legacy_client.hold_release(reference=sale, caller="storefront"),
    ]
    for call in calls:
        with pytest.raises(LegacyRefused) as refused:
            call()
        assert (refused.value.status, refused.value.data["error"]) == (403, "forbidden")
    hold = legacy_client.hold_get(reference=sale)
    assert (hold.quantity, hold.status) == (4, "open")
    assert legacy_client.stock_get(product="rod").held == 4


def test_the_storefront_reads_none_of_the_hot_paths_orders(sale):
    answer = place(caller="hotpath", hold=sale)

    assert legacy_client.order_get(order_id=answer.data["id"]) is None


def test_one_buyers_order_taken_by_the_worker_then_sent_by_the_monolith_is_one_order(sale):
    by_worker = place(caller="hotpath", hold=sale)
    by_monolith = place(caller="storefront")

    assert (by_worker.status, by_monolith.status) == (201, 200)
    assert by_monolith.data["id"] == by_worker.data["id"]
    assert by_monolith.data["hold"] is None  # the hot path's hold is not named to the storefront
    # The monolith keeps its receipt of the order, and its order page reads it back.
    assert legacy_client.order_get(order_id=by_monolith.data["id"]).data["number"] == by_worker.data["number"]


def test_one_buyers_order_placed_by_the_monolith_then_sent_by_the_worker_is_one_order(sale):
    by_monolith = place(caller="storefront")
    by_worker = place(caller="hotpath", hold=sale)

    assert (by_monolith.status, by_worker.status) == (201, 200)
    assert by_worker.data["id"] == by_monolith.data["id"]
    # Not drawn on the hold (the worker's `from_hold`): the sale's units stay on sale.
    assert by_worker.data["hold"] is None
    assert legacy_client.hold_get(reference=sale).quantity == 4


def test_an_order_is_the_storefronts_unless_it_draws_on_a_hold_which_makes_it_the_hot_paths(sale):
    body = {"name": "Ann", "email": "ann@example.com", "lines": [{"product": "rod", "quantity": 1}]}
    from_shop = legacy_client.order_place(reference="shop-1", card_number=APPROVED, **body)
    from_sale = legacy_client.order_place(reference="sale-1", card_number=APPROVED, hold=sale, **body)

    assert from_sale.outcome == Outcome.PLACED and from_sale.data["hold"] == sale
    assert legacy_client.order_get(order_id=from_shop.data["id"]) is not None
    assert legacy_client.order_get(order_id=from_sale.data["id"]) is None
