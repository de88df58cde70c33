"""A sale opened in the same instant as a merchant moves its product or takes it off sale: the
two are ordered by the product's row, so either the opening sees the change and is refused
(its hold given back), or the change sees the open sale and is refused. Never a sale open on
an address its product no longer has."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from orders import sales
from orders.models import SaleAllocation, SaleState
from shop.models import Product
from shop.product_address import ADDRESS, OFF_SALE, product_address_refusal
from tests.orders.sale_support import legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def _in_thread(target) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            result["value"] = target()
        except Exception as exc:  # the test reads what it raised
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.mark.parametrize(
    ("change", "write"),
    [(ADDRESS, {"slug": "muskie-rod"}), (OFF_SALE, {"is_active": False})],
)
def test_a_sale_opened_while_its_product_is_changed_waits_for_the_change_and_is_refused(product, change, write):
    asked, commit = threading.Event(), threading.Event()

    def merchant_saves():
        # As the admin's save: its form asks, then saves, in one transaction.
        with transaction.atomic():
            reason = product_address_refusal(product_ids=[product.pk], change=change)
            Product.objects.filter(pk=product.pk).update(**write)
            asked.set()
            commit.wait(timeout=20)
        return reason

    saving, saved = _in_thread(merchant_saves)
    assert asked.wait(timeout=20)
    opening, opened = _in_thread(lambda: sales.sale_open(product=product, units=5))
    time.sleep(0.5)  # the opening is on its way while the save has not committed
    commit.set()
    saving.join(timeout=30)
    opening.join(timeout=30)

    assert saved == {"value": None}  # no sale was open when the merchant asked
    assert isinstance(opened.get("error"), sales.SaleRefused), opened
    assert opened["error"].field == "product" and "nothing was opened" in opened["error"].message
    assert not SaleAllocation.objects.filter(state=SaleState.OPEN).exists()
    assert stock(Product.objects.get().slug).held == 0  # its hold given back


def test_a_change_asked_while_a_sale_opens_waits_for_the_opening_and_is_refused(product, monkeypatch):
    arming, commit = threading.Event(), threading.Event()
    real_arm = sales.known_keys_arm

    def arm_then_wait(**kwargs):
        real_arm(**kwargs)
        arming.set()  # the opening's transaction has the sale written, not yet committed
        commit.wait(timeout=20)

    monkeypatch.setattr(sales, "known_keys_arm", arm_then_wait)
    opening, opened = _in_thread(lambda: sales.sale_open(product=product, units=5))
    assert arming.wait(timeout=20)

    def merchant_asks():
        with transaction.atomic():
            return product_address_refusal(product_ids=[product.pk], change=ADDRESS)

    asking, asked = _in_thread(merchant_asks)
    time.sleep(0.5)
    commit.set()
    opening.join(timeout=30)
    asking.join(timeout=30)

    assert opened["value"].state == SaleState.OPEN
    assert asked.get("value"), asked  # the reason the address must stay: its sale is open


@pytest.mark.parametrize(("action", "message"), [("mark_inactive", "taken off sale"), ("soft_delete", "deleted")])
def test_a_sale_opened_while_the_product_list_takes_its_product_off_sale_is_refused(
    admin_client, product, monkeypatch, action, message
):
    """The list's actions ask, then write: the opening that comes between the two waits for the
    write (the rows stay locked from the asking), and is refused, its hold given back."""
    from shop import admin as shop_admin

    real_refusal = shop_admin.product_address_refusal
    opening: dict = {}

    def asked_then_a_sale_opens(**kwargs):
        reason = real_refusal(**kwargs)
        # No sale was open when the action asked; another merchant opens one now (`sale open`).
        thread, opened = _in_thread(lambda: sales.sale_open(product=product, units=5))
        thread.join(timeout=2)  # committed by now, unless it waits for this action's write
        opening.update(thread=thread, opened=opened)
        return reason

    monkeypatch.setattr(shop_admin, "product_address_refusal", asked_then_a_sale_opens)
    response = admin_client.post(
        "/admin/shop/product/", {"action": action, "_selected_action": [product.pk]}, follow=True
    )
    opening["thread"].join(timeout=30)

    assert f"1 product(s) {message}" in response.content.decode()
    assert not Product.objects.get(pk=product.pk).is_on_sale
    assert isinstance(opening["opened"].get("error"), sales.SaleRefused), opening["opened"]
    assert not SaleAllocation.objects.filter(state=SaleState.OPEN).exists()
    # Its hold given back (read from the stock of record's row: the legacy API lists no deleted product).
    assert Product.objects.get(pk=product.pk).held == 0
