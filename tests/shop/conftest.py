"""Fixtures of the storefront's tests: a small catalogue, customers, and JSON helpers."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from shop.models import Basket, BasketLine, Category, Product
from tests.conftest import free_port


@pytest.fixture
def rods(db) -> Category:
    return Category.objects.create(name="Rods", slug="rods", position=0, description="Casting rods.")


@pytest.fixture
def reels(db) -> Category:
    return Category.objects.create(name="Reels", slug="reels", position=1)


@pytest.fixture
def make_product(db, rods):
    def make(slug: str, *, title: str | None = None, price_cents: int = 4999, stock: int = 10, category=None, **extra):
        return Product.objects.create(
            slug=slug,
            title=title or slug.replace("-", " ").title(),
            price_cents=price_cents,
            stock=stock,
            category=category or rods,
            description=f"All about the {slug}.",
            **extra,
        )

    return make


@pytest.fixture
def rod(make_product) -> Product:
    return make_product("tourney-casting-rod", title="Tourney Casting Rod", price_cents=4999, stock=10)


@pytest.fixture
def reel(make_product, reels) -> Product:
    return make_product("spinning-reel", title="Spinning Reel", price_cents=2999, stock=20, category=reels)


@pytest.fixture
def customer(django_user_model):
    return django_user_model.objects.create_user("angler", "angler@example.com", "a-long-test-password")


@pytest.fixture
def other_customer(django_user_model):
    return django_user_model.objects.create_user("rival", "rival@example.com", "a-long-test-password")


@pytest.fixture
def closed_port_url() -> str:
    """A legacy API URL where nothing listens: connection refused."""
    return f"http://127.0.0.1:{free_port()}/legacy-api"


def post_json(client: Client, url: str, data, **extra):
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(url, data=body, content_type="application/json", **extra)


def patch_json(client: Client, url: str, data, **extra):
    return client.patch(url, data=json.dumps(data), content_type="application/json", **extra)


def basket_lines(basket: Basket | None) -> dict[str, int]:
    if basket is None:
        return {}
    return dict(BasketLine.objects.filter(basket=basket).values_list("product__slug", "quantity"))


def nothing_written() -> bool:
    return not Basket.objects.exists() and not BasketLine.objects.exists()


@pytest.fixture
def legacy_api(live_server, settings) -> str:
    """The storefront talks to the legacy API served by the live server, over HTTP."""
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    return settings.LEGACY_API_URL


MERCHANT_PASSWORD = "a-merchant-browser-password"


@pytest.fixture
def live_shop_url(live_server, settings) -> str:
    """The shop served by the test's live server, its legacy API included."""
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    return live_server.url


@pytest.fixture
def demo_shop_url(live_shop_url, monkeypatch) -> str:
    """The live shop with the demo catalogue, and a merchant who signs in with MERCHANT_PASSWORD."""
    monkeypatch.setenv("MERCHANT_PASSWORD", MERCHANT_PASSWORD)
    call_command("load_demo", stdout=StringIO())
    return live_shop_url
