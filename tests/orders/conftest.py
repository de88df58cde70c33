"""Fixtures of the hot path's tests: a hot product with its sale allocation, order bodies,
a clean cache and broker, and helpers to run the legacy API, the hot path and workers."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from amqp.exceptions import ChannelError
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from kombu import Message

from config.celery import app as celery_app
from orders import acceptance
from orders.inputs import order_input_parse
from orders.models import HotOrder, SaleAllocation
from orders.selectors import hot_product_get, product_memo_forget
from shop.models import Category, Product
from tests.conftest import free_port

APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
PREFIX = "/shop/rods/muskie-casting-rod/"
ORDERS_URL = PREFIX + "orders"

_emails = itertools.count(1)


@pytest.fixture(autouse=True)
def hotpath_deployment(settings):
    """Requests are served as the hot-path deployment serves them: its URLconf, no edge router."""
    settings.ROOT_URLCONF = "config.urls_hotpath"
    settings.EDGE_ROUTER_ENABLED = False


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    """The cache outlives the database flush between tests: a product cached by one test must
    not answer for another's."""
    cache.clear()
    product_memo_forget()
    yield
    cache.clear()
    product_memo_forget()


def broker_purge() -> None:
    """Drops messages left in the broker by earlier tests (their orders no longer exist)."""
    if django_settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        # RabbitMQ has no queue until a worker or a publish declares it: none is an empty one.
        with celery_app.connection_for_write() as connection, contextlib.suppress(ChannelError):
            connection.default_channel.queue_purge(django_settings.CELERY_TASK_DEFAULT_QUEUE)


def broker_take_all() -> list[tuple[dict, list]]:
    """Takes every message waiting in the broker's default queue: (headers, body) of each."""
    taken = []
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        # Taken for good: RabbitMQ would give back, as the connection closes, what it awaits an ack of.
        while (raw := channel.basic_get(django_settings.CELERY_TASK_DEFAULT_QUEUE, no_ack=True)) is not None:
            message = raw if isinstance(raw, Message) else channel.message_to_python(raw)  # RabbitMQ's: raw
            taken.append((message.headers, message.decode()))
    return taken


def broker_depth() -> int:
    """Messages waiting in the broker's default queue."""
    if django_settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = Path(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return sum(1 for path in folder.iterdir() if path.suffix == ".msg")
    with celery_app.connection_for_write() as connection:
        try:
            return connection.default_channel.queue_declare(
                django_settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
            ).message_count
        except ChannelError:  # Redis keeps no empty list: no queue is an empty one
            return 0


@pytest.fixture
def category(db) -> Category:
    return Category.objects.create(name="Rods", slug="rods")


@pytest.fixture
def product(category) -> Product:
    return Product.objects.create(
        category=category,
        title="Muskie Casting Rod",
        slug="muskie-casting-rod",
        description="A heavy-power casting rod for big pike and muskie.",
        price_cents=14999,
        stock=100,
    )


@pytest.fixture
def allocation(product) -> SaleAllocation:
    return SaleAllocation.objects.create(product=product, is_hot=True, allocated=20, per_order_limit=2)


@pytest.fixture(params=["shared cache", "process cache"])
def throttle_cache(request, settings, counting_clock_pinned):
    """The throttle runs as one Redis script where the cache is Redis, and through Django's
    cache API elsewhere: both count alike."""
    if request.param == "process cache":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        cache.clear()
    yield request.param
    cache.clear()


def order_body(*, quantity: int = 1, email: str | None = None, card: str = APPROVED_CARD, name: str = "Ann Angler"):
    return {
        "quantity": quantity,
        "customer": {"name": name, "email": email or f"buyer{next(_emails)}@example.com"},
        "payment": {"card_number": card},
    }


def post_order(client: Client, body, *, key: str | None = "fresh", url: str = ORDERS_URL, **extra):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex if key == "fresh" else key}
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, raw, content_type="application/json", **headers, **extra)


def order_accept_as_buyer(*, idempotency_key: str | None = None, **body) -> HotOrder:
    """Accepts one order as the hot path's view does (its outbox row left for the relay)."""
    product = hot_product_get(category="rods", product="muskie-casting-rod")
    data = order_input_parse(json.dumps(order_body(**body)).encode())
    key = idempotency_key or uuid.uuid4().hex
    return acceptance.order_accept(product=product, idempotency_key=key, data=data).order


def nothing_reserved(allocation: SaleAllocation) -> bool:
    allocation.refresh_from_db()
    return allocation.reserved == 0 and allocation.sold == 0 and not HotOrder.objects.exists()


# --- Real processes ------------------------------------------------------------------------
def http_json(method: str, url: str, body=None, headers: dict | None = None) -> tuple[int, dict, dict]:
    """One HTTP request with the standard library: (status, JSON body, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


class LegacyApi:
    """The legacy order API as its own gunicorn deployment, on a port chosen up front so that
    workers can be pointed at it before it runs (a backend that is down for a while)."""

    def __init__(self, processes, env: dict[str, str]):
        self.processes = processes
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/legacy-api"
        self.process = None

    def start(self) -> LegacyApi:
        # With the deployment's own hooks: a worker that dies, or a server killed whole and
        # started again, frees the capacity slots it held instead of shedding orders meanwhile.
        self.processes.gunicorn(
            "config.wsgi_legacy", self.env, port=self.port, name=f"legacy-{self.port}", config="config/gunicorn.py"
        )
        self.process = self.processes.get(f"legacy-{self.port}")
        return self

    # The figures are the merchant's to read and reset.
    merchant = {"Authorization": f"Bearer {django_settings.LEGACY_API_TOKENS['merchant']}"}

    def stats(self) -> dict:
        return http_json("GET", f"{self.url}/stats", headers=self.merchant)[1]

    def stats_reset(self) -> None:
        http_json("POST", f"{self.url}/stats/reset", {}, headers=self.merchant)


@pytest.fixture
def legacy_env(process_env) -> dict[str, str]:
    return {**process_env, "LEGACY_CAPACITY": "2"}


@pytest.fixture
def legacy_api(processes, legacy_env) -> LegacyApi:
    """The legacy API, not started yet."""
    return LegacyApi(processes, legacy_env)


@pytest.fixture
def worker_env(process_env, legacy_api) -> dict[str, str]:
    """A worker's environment: fast retries; mail goes to the console, i.e. the worker's log."""
    broker_purge()
    return {
        **process_env,
        "LEGACY_API_URL": legacy_api.url,
        "LEGACY_CAPACITY": "2",
        # All of it, so that the permits are all that keeps the workers within the capacity.
        "ORDERS_LEGACY_CONCURRENCY": "2",
        "LEGACY_API_TIMEOUT": "10",
        "ORDERS_RETRY_BACKOFF": "1",
        "ORDERS_RETRY_BACKOFF_MAX": "2",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }


def orders_final(expected: int) -> Callable[[], bool]:
    def check() -> bool:
        return HotOrder.objects.filter(status__in=["complete", "failed"]).count() >= expected

    return check


def legacy_orders_count() -> int:
    """Orders of record in the legacy API's database (read only, to check what it received)."""
    from django.apps import apps

    return apps.get_model("legacy_api", "Order").objects.count()


def legacy_references() -> list[str]:
    from django.apps import apps

    return list(apps.get_model("legacy_api", "Order").objects.values_list("reference", flat=True))


def order_claimed(order_id: int) -> None:
    """Takes the order as a worker does before it calls the legacy API (queued → validating),
    and lets go of the claim, so a test can record the legacy API's answer for it."""
    from orders import placement

    if placement.order_claim(order_id=order_id, holder="test") is not None:
        placement.order_claim_release(order_id=order_id, holder="test")
