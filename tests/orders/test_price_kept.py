"""An order is charged the price its buyer was told: a merchant who changes a product's price
while accepted orders wait to be placed changes what later buyers pay, not what those orders
cost (the 202's total, the confirmation email's, and the card's authorisation agree)."""

from __future__ import annotations

import pytest

from legacy_api.models import Order, PaymentAuthorisation
from orders import placement, sales
from orders.models import HotOrder
from shop.models import Product
from tests.orders.conftest import order_accept_as_buyer, order_body, post_order
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def test_a_price_changed_after_acceptance_does_not_change_what_the_order_is_charged(product):
    sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=2)
    accepted_total = order.total_cents
    assert accepted_total == 2 * product.price_cents
    # The merchant raises the price while the order waits in the queue.
    Product.objects.filter(pk=product.pk).update(price_cents=product.price_cents + 5000)

    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"
    placed = Order.objects.get(reference=HotOrder.objects.get(pk=order.pk).reference)
    assert placed.total_cents == accepted_total
    assert [line.unit_price_cents for line in placed.lines.all()] == [product.price_cents]
    assert PaymentAuthorisation.objects.get(key=placed.reference).amount_cents == accepted_total


def test_a_buyer_is_never_accepted_for_a_total_the_order_backend_cannot_take(client, product):
    """A sale of a very dear product: the order backend takes totals up to 2,147,483,647 cents,
    so the hot path's limit per order is what fits in that, and a buyer above it gets a 400 on
    `quantity` at once, not a 202 that the backend later refuses."""
    Product.objects.filter(pk=product.pk).update(price_cents=900_000_000)  # $9,000,000 a unit
    sales.sale_open(product=product, units=10, per_order_limit=5)

    refused = post_order(client, order_body(quantity=3))
    assert refused.status_code == 400, refused.content
    assert refused.json()["fields"] == {"quantity": ["At most 2 per order."]}
    assert not HotOrder.objects.exists()

    accepted = post_order(client, order_body(quantity=2))
    assert accepted.status_code == 202, accepted.content
    order = HotOrder.objects.get()
    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"
    assert Order.objects.get(reference=HotOrder.objects.get(pk=order.pk).reference).total_cents == 1_800_000_000
