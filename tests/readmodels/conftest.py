"""Fixtures of the read models' tests: a small catalogue with suppliers, orders placed in the
stock of record as any channel places them, and the read models' consumers run to the end."""

from __future__ import annotations

import itertools
import uuid

import pytest

from events.consumers import consumer_run_all
from shop.models import Category, Product, Supplier
from tests.events.conftest import settled

# The hot path's fixtures for a stampede: the legacy API in its own gunicorn, a worker's environment.
from tests.orders.conftest import legacy_api, legacy_env, worker_env  # noqa: F401

APPROVED_CARD = "4242424242424242"
READ_MODELS = ("inventory", "sales_per_minute", "tallies", "reorders")

_emails = itertools.count(1)


@pytest.fixture(autouse=True)
def read_models_registered(settings):
    """The read models' consumers, whatever the environment named; a cache with nothing an
    earlier test's consumers published."""
    from django.core.cache import cache

    settings.EVENT_CONSUMERS = dict(settings.EVENT_CONSUMERS_DEFAULT)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def catalogue(db) -> dict[str, Product]:
    rods = Category.objects.create(name="Rods", slug="rods")
    reels = Category.objects.create(name="Reels", slug="reels")
    northwoods = Supplier.objects.create(name="Northwoods Rod Company", email="orders@northwoods.example")
    lakeshore = Supplier.objects.create(name="Lakeshore Reel Works", email="sales@lakeshore.example", lead_time_days=10)
    return {
        "muskie-casting-rod": Product.objects.create(
            category=rods,
            supplier=northwoods,
            title="Muskie Casting Rod",
            slug="muskie-casting-rod",
            price_cents=14999,
            stock=100,
        ),
        "tourney-casting-rod": Product.objects.create(
            category=rods,
            supplier=northwoods,
            title="Tourney Casting Rod",
            slug="tourney-casting-rod",
            price_cents=4999,
            stock=60,
            reorder_point=10,
        ),
        "spinning-reel": Product.objects.create(
            category=reels,
            supplier=lakeshore,
            title="Spinning Reel",
            slug="spinning-reel",
            price_cents=2999,
            stock=80,
        ),
    }


def place(product: str, quantity: int = 1, *, hold: str | None = None, reference: str | None = None):
    """An order placed in the stock of record, as the legacy API's view places it."""
    from legacy_api.services import LineRequest, order_place

    return order_place(
        reference=reference or uuid.uuid4().hex,
        customer_name="Ann Angler",
        customer_email=f"buyer{next(_emails)}@example.com",
        lines=[LineRequest(product=product, quantity=quantity)],
        card_number=APPROVED_CARD,
        hold=hold,
    )[0]


def catch_up(*names: str) -> None:
    """Runs the read models' consumers until each has folded in every committed event."""
    settled()
    for name in names or READ_MODELS:
        result = consumer_run_all(consumer=name)
        assert not result.failed and not result.dead_lettered, result


def dead_lettered_in(monkeypatch, view, *, consumer: str, failing) -> None:
    """`consumer`'s view fails on the events `failing` picks (a bug or a hiccup, fixed later:
    monkeypatch.undo()), every other read model catches up, and that one event becomes
    `consumer`'s dead letter. Needs EVENT_CONSUMER_MAX_ATTEMPTS = 1."""
    real = view.apply

    def apply(self, event, generation):
        if failing(event):
            raise RuntimeError(f"{consumer} down")
        return real(self, event, generation)

    monkeypatch.setattr(view, "apply", apply)
    catch_up(*(name for name in READ_MODELS if name != consumer))
    settled()
    assert consumer_run_all(consumer=consumer).dead_lettered == 1
