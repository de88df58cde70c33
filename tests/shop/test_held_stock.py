"""The storefront shows and sells only what is available: units a sale holds in the stock of
record (legacy API holds, made over HTTP as the hot path makes them) are not on offer to
ordinary shoppers, on the product pages, in the basket API or at checkout."""

from __future__ import annotations

import json

import pytest
import urllib3
from django.conf import settings

from shop.models import Basket, PlacedOrder, Product
from tests.shop.conftest import basket_lines, nothing_written, post_json
from tests.shop.test_checkout import checkout_form, fill_basket

ITEMS = "/api/basket/items"


def hold(legacy_api: str, product: Product, quantity: int, reference: str = "sale-1") -> None:
    """Holds units in the stock of record as a sale's opening does."""
    response = urllib3.request(
        "POST",
        f"{legacy_api}/holds",
        body=json.dumps({"reference": reference, "product": product.slug, "quantity": quantity}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings.LEGACY_API_TOKENS['hotpath']}",
        },
    )
    assert response.status == 201, response.data


def test_a_sale_holding_every_unit_shows_the_product_sold_out(client, legacy_api, rod):
    hold(legacy_api, rod, 10)

    page = client.get(rod.get_absolute_url()).content.decode()
    shelf = client.get(rod.category.get_absolute_url()).content.decode()

    assert "badge-sold-out" in page
    assert "Sold out for now" in page
    assert "data-add-to-basket" not in page
    assert "badge-sold-out" in shelf
    assert Product.objects.get(pk=rod.pk).stock == 10  # on hand, but all of it held


def test_a_sale_holding_every_unit_makes_the_basket_api_answer_409(client, legacy_api, rod):
    hold(legacy_api, rod, 10)

    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 1})

    assert response.status_code == 409
    assert response.json()["available"] == 0
    assert "sold out" in response.json()["fields"]["quantity"][0]
    assert nothing_written()


def test_only_the_units_no_hold_keeps_are_offered(client, legacy_api, rod):
    hold(legacy_api, rod, 7)

    page = client.get(rod.get_absolute_url()).content.decode()
    too_many = post_json(client, ITEMS, {"product": rod.slug, "quantity": 4})
    enough = post_json(client, ITEMS, {"product": rod.slug, "quantity": 3})

    assert "Only 3 left" in page
    assert 'max="3"' in page
    assert (too_many.status_code, too_many.json()["available"]) == (409, 3)
    assert enough.status_code == 200
    assert enough.json()["lines"][0]["stock"] == 3


@pytest.mark.django_db(transaction=True)
def test_checkout_cannot_take_units_a_sale_held_after_they_were_put_in_the_basket(client, legacy_api, rod):
    fill_basket(client, rod, 3)
    hold(legacy_api, rod, 8)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 409
    assert 'data-checkout-error="out_of_stock"' in response.content.decode()
    assert basket_lines(Basket.objects.get()) == {rod.slug: 3}
    assert not PlacedOrder.objects.exists()
    rod.refresh_from_db()
    assert (rod.stock, rod.held) == (10, 8)
