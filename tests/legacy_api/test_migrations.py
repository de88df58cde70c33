"""Holds and orders recorded before they had callers are given the callers that made them: the
sale's holds are the hot path's (legacy_client's hold calls carry its token), so are the
orders drawn on them, and every other order is the storefront's, which reads them back."""

from __future__ import annotations

import pytest

from legacy_api.models import Hold, Order
from shop.models import Category, Product
from tests.conftest import migrate_to

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

BEFORE = [("legacy_api", "0003_stock_receipts")]
AFTER = [("legacy_api", "0004_callers_own_holds_and_orders")]


def test_holds_and_orders_made_before_callers_are_given_theirs():
    # The catalogue is not migrated here: its rows are today's.
    rod = Product.objects.create(
        category=Category.objects.create(name="Rods", slug="rods"),
        title="Muskie Casting Rod",
        slug="muskie-casting-rod",
        price_cents=14999,
        stock=10,
        held=4,
    )
    old = migrate_to(BEFORE).loader.project_state(BEFORE).apps
    old_hold = old.get_model("legacy_api", "Hold")
    old_order = old.get_model("legacy_api", "Order")
    sale = old_hold.objects.create(reference="sale-1", product_id=rod.pk, requested=5, quantity=4)
    order = {
        "status": "placed",
        "customer_name": "Ada Angler",
        "customer_email": "ada@example.com",
        "card_last4": "4242",
        "authorisation_code": "A1",
        "total_cents": 14999,
        "processing_ms": 1,
    }
    old_order.objects.create(reference="from-the-sale", number="L00000001", hold=sale, **order)
    old_order.objects.create(reference="from-the-shop", number="L00000002", **order)

    migrate_to(AFTER)

    assert Hold.objects.get(reference="sale-1").caller == "hotpath"
    assert dict(Order.objects.values_list("reference", "caller")) == {
        "from-the-sale": "hotpath",
        "from-the-shop": "storefront",
    }
