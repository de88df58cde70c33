"""The monolith's POST .../orders composed with the hot path (config.buy_now): an Idempotency-Key
the hot path took is that order's key on every product's URL, and bad input is refused the same
way on every origin, before anything is written. The legacy API is down here: no answer may
depend on it."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from events.models import Event
from orders.models import HotOrder, SaleAllocation
from orders.selectors import product_memo_forget
from shop.models import Category, PlacedOrder, Product
from shop.order_input import KEY_REUSED_DETAIL
from tests.conftest import free_port
from tests.orders.conftest import allocation, category, clean_cache, nothing_reserved, order_body, post_order, product

pytestmark = pytest.mark.django_db

__all__ = ["allocation", "category", "clean_cache", "product"]  # the hot path's fixtures, used here

REEL_ORDERS_URL = "/shop/reels/baitcasting-reel/orders"


@pytest.fixture(autouse=True)
def monolith(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"
    settings.EDGE_ROUTER_ENABLED = False
    settings.LEGACY_API_URL = f"http://127.0.0.1:{free_port()}/legacy-api"


@pytest.fixture
def baitcasting_reel(db) -> Product:
    """On sale in the monolith, never on the hot path."""
    reels = Category.objects.create(name="Reels", slug="reels")
    return Product.objects.create(
        category=reels, title="Baitcasting Reel", slug="baitcasting-reel", price_cents=29999, stock=10
    )


def assert_key_reused(response) -> None:
    assert response.status_code == 422, response.content
    assert response.json() == {"error": "idempotency_key_reused", "detail": KEY_REUSED_DETAIL}


def test_a_hot_path_key_sent_for_a_product_off_the_hot_path_is_422_not_not_hot(client, allocation, baitcasting_reel):
    first = post_order(client, order_body(email="ann@example.com"), key="ann-1")
    assert first.status_code == 202

    reused = post_order(client, order_body(email="ann@example.com"), key="ann-1", url=REEL_ORDERS_URL)

    assert_key_reused(reused)
    assert HotOrder.objects.count() == 1 and not PlacedOrder.objects.exists()
    baitcasting_reel.refresh_from_db()
    assert baitcasting_reel.stock == 10


def test_a_hot_path_key_with_another_body_on_a_product_off_the_hot_path_is_422(client, allocation, baitcasting_reel):
    post_order(client, order_body(email="ann@example.com"), key="ann-1")

    reused = post_order(client, order_body(email="bob@example.com", quantity=2), key="ann-1", url=REEL_ORDERS_URL)

    assert_key_reused(reused)


def test_a_hot_path_key_on_a_product_off_the_hot_path_still_names_a_bad_body(client, allocation, baitcasting_reel):
    post_order(client, order_body(email="ann@example.com"), key="ann-1")
    body = order_body(email="not-an-email")

    refused = post_order(client, body, key="ann-1", url=REEL_ORDERS_URL)

    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["customer.email"]


def test_a_true_replay_of_a_hot_path_key_still_gets_its_order(client, allocation, baitcasting_reel):
    body = order_body(email="ann@example.com")
    first = post_order(client, body, key="ann-1")
    post_order(client, order_body(), key="ann-1", url=REEL_ORDERS_URL)

    again = post_order(client, body, key="ann-1")

    assert (again.status_code, again.json()) == (202, first.json())
    assert again["Idempotent-Replayed"] == "true"


def test_a_true_replay_gets_its_order_when_the_product_has_left_the_hot_path(client, allocation):
    """Its sale deleted since: the hot path no longer knows the product, but the key's order stands."""
    body = order_body(email="ann@example.com")
    first = post_order(client, body, key="ann-1")
    SaleAllocation.objects.filter(pk=allocation.pk).delete()
    cache.clear()
    product_memo_forget()

    again = post_order(client, body, key="ann-1")
    reused = post_order(client, order_body(email="ann@example.com", quantity=2), key="ann-1")

    assert (again.status_code, again.json()) == (202, first.json())
    assert again["Location"] == first["Location"] and again["Idempotent-Replayed"] == "true"
    assert_key_reused(reused)
    assert HotOrder.objects.count() == 1 and not PlacedOrder.objects.exists()


EMAILS_WITH_A_LONE_SURROGATE = ["al@exa\ud800mple.com", "al@example.com\ud800", "al@\udfffexample.com"]


@pytest.mark.parametrize("urlconf", ["config.urls_monolith", "config.urls_hotpath", "config.urls"])
@pytest.mark.parametrize("email", EMAILS_WITH_A_LONE_SURROGATE)
def test_an_email_with_a_lone_surrogate_is_400_naming_it_on_every_origin(client, allocation, settings, urlconf, email):
    """Hashed for the throttle, it used to be a 500."""
    settings.ROOT_URLCONF = urlconf

    response = post_order(client, order_body(email=email))

    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["customer.email"]
    assert nothing_reserved(allocation)
    assert not Event.objects.exists()
