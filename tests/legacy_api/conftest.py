"""Fixtures of the legacy order API's tests: a catalogue to order from, order bodies, a clean
capacity gate, callers with their tokens, and the API served as its own deployment
(config.urls_legacy)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from legacy_api import capacity
from legacy_api.models import Order
from shop.models import Category, Product

ORDERS_URL = "/legacy-api/orders"
APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@pytest.fixture(autouse=True)
def legacy_deployment(settings):
    """Requests are served as the legacy deployment serves them: its URLconf, no edge router."""
    settings.ROOT_URLCONF = "config.urls_legacy"
    settings.EDGE_ROUTER_ENABLED = False


@pytest.fixture(autouse=True)
def clean_capacity_gate() -> Iterator[None]:
    """Each test starts with no figures and no slot held (a test that fails holding one must not
    leave the next one over capacity)."""
    # Read now: a test may point the settings elsewhere before this fixture cleans up.
    redis_url, var_dir = django_settings.REDIS_URL, django_settings.VAR_DIR
    _capacity_clear(redis_url, var_dir)
    yield
    _capacity_clear(redis_url, var_dir)


def _capacity_clear(redis_url: str, var_dir: Path) -> None:
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{capacity.RedisBackend.prefix}*"))
        if keys:
            client.delete(*keys)
    else:
        # The figures in all, and each caller's.
        for stats in (var_dir / "legacy-slots").glob("**/stats.json"):
            stats.unlink(missing_ok=True)


def bearer(caller: str) -> dict[str, str]:
    """The headers of a caller presenting its configured token (registered after migrate)."""
    return {"Authorization": f"Bearer {django_settings.LEGACY_API_TOKENS[caller]}"}


@pytest.fixture
def client() -> Client:
    """The storefront, as most callers of the API are; `anonymous_client` presents no token."""
    return Client(headers=bearer("storefront"))


@pytest.fixture
def merchant_client() -> Client:
    return Client(headers=bearer("merchant"))


@pytest.fixture
def hotpath_client() -> Client:
    return Client(headers=bearer("hotpath"))


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


@pytest.fixture
def rods(db) -> Category:
    return Category.objects.create(name="Rods", slug="rods")


@pytest.fixture
def muskie_rod(rods) -> Product:
    return Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999, stock=10
    )


@pytest.fixture
def tourney_rod(rods) -> Product:
    return Product.objects.create(
        category=rods, title="Tourney Casting Rod", slug="tourney-casting-rod", price_cents=4999, stock=25
    )


@pytest.fixture
def order_body() -> Callable[..., dict[str, Any]]:
    """A valid order body for the Muskie rod; keyword arguments replace its parts."""

    def make(**overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reference": "ref-0001",
            "customer": {"name": "Ada Angler", "email": "ada@example.com"},
            "lines": [{"product": "muskie-casting-rod", "quantity": 2}],
            "payment": {"card_number": APPROVED_CARD},
        }
        body.update(overrides)
        return body

    return make


@pytest.fixture
def post_order(client: Client) -> Callable[..., Any]:
    """POSTs a body to /legacy-api/orders as JSON (or raw bytes, with another content type)."""

    def post(body: Any, *, content_type: str = "application/json", raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body)
        return client.post(ORDERS_URL, data=data, content_type=content_type)

    return post


@pytest.fixture
def slots_held(settings) -> Iterator[list[Any]]:
    """Every capacity slot taken by this test process, as other requests would hold them."""
    gate = capacity.backend()
    handles = [gate.slot_acquire(settings.LEGACY_CAPACITY) for _ in range(settings.LEGACY_CAPACITY)]
    assert all(handle is not None for handle in handles)
    yield handles
    for handle in handles:
        gate.slot_release(handle)


def assert_nothing_written(product: Product, *, stock: int) -> None:
    assert Order.objects.count() == 0
    product.refresh_from_db()
    assert product.stock == stock


def pending(reference: str, *, caller: str, lease_seconds: int, fingerprint: str = "") -> Order:
    """A request still placing `reference` at the legacy API (or one that died there, its lease
    ended), with the body `fingerprint` (none: its caller's, as before fingerprints were)."""
    return Order.objects.create(
        reference=reference,
        status=Order.Status.PENDING,
        caller=caller,
        fingerprint=fingerprint,
        customer_name="Ada Angler",
        customer_email="ada@example.com",
        card_last4="4242",
        authorisation_code="",
        total_cents=29998,
        processing_ms=0,
        lease_owner="a-request",
        lease_until=timezone.now() + timedelta(seconds=lease_seconds),
    )
