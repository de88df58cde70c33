"""Basket services: stock and per-line limits, and concurrent changes to one basket."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from shop.models import Basket, BasketLine
from shop.services import (
    MAX_LINE_QUANTITY,
    InsufficientStock,
    InvalidQuantity,
    ProductUnavailable,
    basket_add,
    basket_merge_into_user,
    basket_set_quantity,
)
from tests.shop.conftest import basket_lines


def test_a_line_never_holds_more_than_the_per_line_limit(make_product):
    plenty = make_product("plenty-rod", stock=1000)
    basket = Basket.objects.create()
    basket_add(basket=basket, product=plenty, quantity=60)

    with pytest.raises(InvalidQuantity):
        basket_add(basket=basket, product=plenty, quantity=MAX_LINE_QUANTITY - 59)

    assert basket_lines(basket) == {"plenty-rod": 60}


def test_set_quantity_checks_the_stock(rod):
    basket = Basket.objects.create()

    with pytest.raises(InsufficientStock) as raised:
        basket_set_quantity(basket=basket, product=rod, quantity=11)

    assert raised.value.available == 10
    assert not BasketLine.objects.exists()


def test_a_product_taken_off_sale_cannot_be_added(rod):
    basket = Basket.objects.create()
    rod.is_active = False
    rod.save()

    with pytest.raises(ProductUnavailable):
        basket_add(basket=basket, product=rod, quantity=1)


def test_the_merge_drops_products_no_longer_on_sale(rod, reel, customer):
    mine = Basket.objects.create(owner=customer)
    basket_add(basket=mine, product=reel, quantity=1)
    anonymous = Basket.objects.create()
    basket_add(basket=anonymous, product=rod, quantity=2)
    rod.soft_delete()

    merged = basket_merge_into_user(basket=anonymous, user=customer)

    assert merged == mine
    assert basket_lines(mine) == {reel.slug: 1}
    anonymous.refresh_from_db()
    assert anonymous.merged_into == mine and not anonymous.lines.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_to_one_basket_never_pass_the_stock(make_product):
    product = make_product("contested-rod", stock=10)
    basket = Basket.objects.create()
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def add_six() -> None:
        try:
            start.wait()
            basket_add(basket=basket, product=product, quantity=6)
            outcomes.append("added")
        except InsufficientStock:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=add_six) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["added", "refused", "refused", "refused"]
    assert basket_lines(basket) == {"contested-rod": 6}
