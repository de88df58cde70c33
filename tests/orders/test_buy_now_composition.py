"""The monolith's POST .../orders composed with the hot path (config.buy_now): the key decides,
not the route. Served here by the monolith's URLconf, with the legacy API down: nothing in these
answers may depend on it."""

import json

import pytest

from legacy_client import reference_for_key
from orders.models import HotOrder
from shop.models import PlacedOrder
from shop.order_input import order_input_parse
from tests.conftest import free_port
from tests.orders.conftest import nothing_reserved, order_body, post_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monolith(settings, closed_port_url):
    settings.ROOT_URLCONF = "config.urls_monolith"
    settings.LEGACY_API_URL = closed_port_url


@pytest.fixture
def closed_port_url():
    return f"http://127.0.0.1:{free_port()}/legacy-api"


def test_while_the_sale_is_open_the_monolith_takes_orders_through_the_allocation(client, allocation):
    response = post_order(client, order_body(quantity=2))
    assert response.status_code == 202 and response.json()["number"].startswith("T")
    allocation.refresh_from_db()
    assert allocation.reserved == 2


@pytest.mark.parametrize("urlconf", ["config.urls_monolith", "config.urls_hotpath", "config.urls"])
def test_a_quantity_over_the_per_order_limit_is_400_naming_quantity_on_every_origin(
    client, allocation, settings, urlconf
):
    settings.ROOT_URLCONF = urlconf
    settings.EDGE_ROUTER_ENABLED = False
    response = post_order(client, order_body(quantity=3))
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["quantity"]
    assert nothing_reserved(allocation)


def test_a_key_the_hot_path_took_is_replayed_after_the_sale_closed(client, allocation):
    body = order_body()
    first = post_order(client, body, key="crossing")
    allocation.is_hot = False
    allocation.save()
    again = post_order(client, body, key="crossing")
    assert (again.status_code, again.json()) == (202, first.json())
    reused = post_order(client, order_body(quantity=2), key="crossing")
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert HotOrder.objects.count() == 1 and not PlacedOrder.objects.exists()


def test_a_key_the_monolith_placed_is_answered_with_that_order_by_the_hot_path(client, allocation, settings):
    body = order_body()
    fingerprint = order_input_parse(json.dumps(body).encode()).fingerprint(product_slug="muskie-casting-rod")
    PlacedOrder.objects.create(
        number="L00000042",
        legacy_id=42,
        reference=reference_for_key("placed-first"),
        email=body["customer"]["email"],
        name="Ann Angler",
        total_cents=14999,
        processing_ms=5,
        fingerprint=fingerprint,
    )
    settings.ROOT_URLCONF = "config.urls_hotpath"
    again = post_order(client, body, key="placed-first")
    assert again.status_code == 201
    assert again.json() == {"number": "L00000042", "status": "complete", "order_url": "/orders/L00000042/"}
    reused = post_order(client, order_body(quantity=2), key="placed-first")
    assert reused.status_code == 422
    assert nothing_reserved(allocation)


def test_a_monolith_receipt_not_yet_stamped_is_answered_with_its_order_by_the_hot_path(client, allocation, settings):
    """A receipt without its fingerprint yet (its request between the receipt's commit and
    its stamp, or killed there) is the key's order: told "use a fresh key", the buyer would
    order and pay again. The hot path reads the storefront's receipts and never stamps them."""
    body = order_body()
    PlacedOrder.objects.create(
        number="L00000043",
        legacy_id=43,
        reference=reference_for_key("placed-unstamped"),
        email=body["customer"]["email"],
        name="Ann Angler",
        total_cents=14999,
        processing_ms=5,
        fingerprint="",
    )
    settings.ROOT_URLCONF = "config.urls_hotpath"
    again = post_order(client, body, key="placed-unstamped")
    assert (again.status_code, again.json()["number"]) == (201, "L00000043")
    assert PlacedOrder.objects.get(number="L00000043").fingerprint == ""
    assert nothing_reserved(allocation)


def test_a_sale_closed_a_moment_ago_sends_the_order_to_the_monolith_not_a_refusal(client, allocation, monkeypatch):
    # This process still holds the product as it cached it (on sale), but the merchant has just
    # switched the sale off: the hot path refuses, and the monolith takes the order itself.
    from orders import selectors as order_selectors

    cached = order_selectors.hot_product_get(category="rods", product="muskie-casting-rod")
    monkeypatch.setattr(order_selectors, "hot_product_get", lambda **_: cached)
    allocation.is_hot = False
    allocation.save()

    response = post_order(client, order_body(), key="just-after-the-close")

    # The legacy API is down here: the monolith's own buy-now answers that, not "not on the hot path".
    assert response.status_code == 503, response.content
    assert response.json()["error"] != "not_hot"
    assert not HotOrder.objects.exists() and nothing_reserved(allocation)


@pytest.mark.django_db(transaction=True)
def test_a_key_whose_card_the_monolith_declined_is_declined_again_by_the_hot_path_once_the_sale_opens(
    client, allocation, settings, live_server
):
    """The first answer stands whichever origin the retry reaches: not a 202 for the same body,
    then a second try of the card at the legacy API, then "not placed" by email."""
    from tests.orders.conftest import DECLINED_CARD
    from tests.orders.sale_support import legacy_serve

    allocation.is_hot = False  # no sale yet: the monolith's own buy-now answers
    allocation.save()
    legacy_serve(settings, live_server)
    body = order_body(card=DECLINED_CARD)
    first = post_order(client, body, key="declined-first")
    assert first.status_code == 402, first.content

    allocation.is_hot = True  # the sale opens; the retry reaches the hot path's acceptance
    allocation.save()
    for urlconf in ("config.urls_monolith", "config.urls_hotpath"):
        settings.ROOT_URLCONF = urlconf
        again = post_order(client, body, key="declined-first")
        assert (again.status_code, again.json()) == (402, first.json()), (urlconf, again.content)
    reused = post_order(client, order_body(), key="declined-first")
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert nothing_reserved(allocation)


@pytest.mark.django_db(transaction=True)
def test_with_the_cache_away_an_open_sale_s_orders_still_go_through_its_reservation(allocation, monkeypatch):
    """The monolith's buy-now reads whether a sale is open from the database while the cache is
    away: it never sends the sale's product to its own buy-now, from open stock, meanwhile."""
    from django.test import Client, override_settings

    from config import buy_now

    monolith_orders = []
    monkeypatch.setattr(buy_now.shop_api, "product_order", lambda *args, **kwargs: monolith_orders.append(args))
    away = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    with override_settings(CACHES=away):
        response = post_order(Client(raise_request_exception=False), order_body(quantity=1))

    assert response.status_code == 503 and monolith_orders == []  # the hot path's gate needs the cache
    assert not PlacedOrder.objects.exists()
