"""The beat's true-up of the whole catalogue, every minute: it compares exactly, under their
locks, only the products whose view may differ from the stock of record, and while the
inventory view is far behind the log (past a sale, a restore) it waits for the view to catch
up instead of reading the whole backlog once per product under the lock the view's consumer
waits on."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.services import events_append
from readmodels.inventory import TRUE_UP_MAX_BEHIND, inventory_true_up
from shop.models import Product
from tests.readmodels.conftest import catch_up

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTS = 40


@pytest.fixture
def backlog(catalogue) -> None:
    rods = catalogue["muskie-casting-rod"].category
    Product.objects.bulk_create(
        Product(category=rods, title=f"Rod {n}", slug=f"rod-{n}", price_cents=999, stock=5) for n in range(PRODUCTS)
    )
    on_hand = catalogue["spinning-reel"].stock
    events_append(
        [
            {
                "source": "legacy.stock",
                "detail_type": "State change Notification",
                "type": "STOCK",
                "subtype": "PRODUCT",
                "status": "CHANGED",
                "data": {
                    "product": "spinning-reel",
                    "on_hand": on_hand,
                    "held": 0,
                    "available": on_hand,
                    "delta": 0,
                    "held_delta": 0,
                    "reason": "restock",
                },
            }
            for _ in range(TRUE_UP_MAX_BEHIND + 1)
        ]
    )


def test_the_catalogues_true_up_waits_while_the_view_is_far_behind_the_log(backlog):
    with CaptureQueriesContext(connection) as sent:
        corrections = inventory_true_up()

    on_events = [query["sql"] for query in sent.captured_queries if 'FROM "events_event"' in query["sql"]]
    assert corrections == []
    assert len(on_events) == 1, on_events


def test_the_catalogues_true_up_corrects_once_the_view_has_caught_up(backlog):
    inventory_true_up()
    catch_up("inventory")
    Product.objects.filter(slug="rod-7").update(stock=9)

    corrections = inventory_true_up()

    assert ("rod-7", 9) in [(c["product"], c["on_hand"]) for c in corrections]


def test_the_catalogues_true_up_compares_exactly_only_the_products_that_may_differ(catalogue):
    """A settled view costs the beat's pass the same few queries for 3 products as for 43; a
    product whose record moved without an event is still found and corrected."""
    catch_up("inventory")
    inventory_true_up()
    catch_up("inventory")
    with CaptureQueriesContext(connection) as small:
        assert inventory_true_up() == []

    rods = catalogue["muskie-casting-rod"].category
    Product.objects.bulk_create(
        Product(category=rods, title=f"Rod {n}", slug=f"rod-{n}", price_cents=999, stock=5) for n in range(PRODUCTS)
    )
    inventory_true_up()  # the view's first figures of the new products
    catch_up("inventory")
    with CaptureQueriesContext(connection) as large:
        assert inventory_true_up() == []
    assert len(large.captured_queries) == len(small.captured_queries)

    Product.objects.filter(slug="rod-7").update(stock=9)  # drift: no event said so
    corrections = inventory_true_up()
    assert [(c["product"], c["on_hand"], c["delta"]) for c in corrections] == [("rod-7", 9, 4)]
