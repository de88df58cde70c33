"""An order's take and a basket change at the same moment: the take holds the basket's row, which
every basket change queues on (shop.services._lock_basket), so neither writes back what the
other changed. Before, the take followed into an account's basket locked only its lines, and an
add there wrote back the line it had read: the ordered rods came back, to be ordered again."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from shop import services as shop_services
from shop.models import Basket
from shop.services import basket_add, basket_merge_into_user
from tests.shop.conftest import basket_lines

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_add_to_the_accounts_basket_during_a_merged_take_does_not_undo_the_take(make_product, customer):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    rod = make_product("tourney-casting-rod", stock=10)
    account = Basket.objects.create(owner=customer)
    basket_add(basket=account, product=rod, quantity=1)  # the account's own rod
    guest = Basket.objects.create()
    basket_add(basket=guest, product=rod, quantity=2)
    basket_merge_into_user(basket=guest, user=customer)  # account line: 3 (had 1, added 2)
    taken, go = threading.Event(), threading.Event()

    def take():  # the guest's order of 2 rods, its lines followed into the account's basket
        try:
            with transaction.atomic():
                merged = Basket.objects.select_for_update().get(pk=guest.pk)
                shop_services._basket_take_merged(merged, lines=[{"product": rod.slug, "quantity": 2}])
                taken.set()
                go.wait(timeout=10)
                time.sleep(0.5)  # the signed-in tab's add is under way meanwhile
        finally:
            connection.close()

    thread = threading.Thread(target=take)
    thread.start()
    assert taken.wait(timeout=10)
    go.set()
    basket_add(basket=account, product=rod, quantity=1)  # the signed-in tab adds one more rod
    thread.join(timeout=20)

    # The account's own rod, plus the one just added; the 2 ordered are gone.
    assert basket_lines(Basket.objects.get(pk=account.pk)) == {rod.slug: 2}


def test_an_add_during_an_orders_take_does_not_undo_the_take(make_product, customer):
    """The same without a merge: a buyer's order takes its 2 rods while another tab adds one."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    rod = make_product("tourney-casting-rod", stock=10)
    basket = Basket.objects.create(owner=customer)
    basket_add(basket=basket, product=rod, quantity=3)
    taken, go = threading.Event(), threading.Event()

    def take():
        try:
            with transaction.atomic():
                shop_services.basket_take_ordered(basket=basket, lines=[{"product": rod.slug, "quantity": 2}])
                taken.set()
                go.wait(timeout=10)
                time.sleep(0.5)  # the other tab's add is under way meanwhile
        finally:
            connection.close()

    thread = threading.Thread(target=take)
    thread.start()
    assert taken.wait(timeout=10)
    go.set()
    basket_add(basket=basket, product=rod, quantity=1)
    thread.join(timeout=20)

    assert basket_lines(Basket.objects.get(pk=basket.pk)) == {rod.slug: 2}
