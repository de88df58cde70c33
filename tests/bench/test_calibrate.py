"""The legacy API's calibration counts orders it really placed: each calibration sends
references of its own (one the legacy API has seen is answered with its order at once, which
would count a replay as capacity). The real legacy API, in its own gunicorn."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.conf import settings

from bench.phases import QUICK, calibrate_legacy
from tests.orders.conftest import legacy_api, legacy_env  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass
class LegacyOnly:
    """What calibrate_legacy needs of bench.stack.Stack."""

    base: str
    settings: object = field(default_factory=lambda: type("Settings", (), {"legacy_capacity": 2})())

    def url(self, name: str, path: str) -> str:
        assert name == "legacy"
        return self.base + path

    def legacy_headers(self, caller: str = "merchant") -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {settings.LEGACY_API_TOKENS[caller]}"}


def test_each_calibration_counts_only_orders_placed_anew(legacy_api):  # noqa: F811
    from legacy_api.models import Order
    from shop.models import Category, Product

    reels = Category.objects.create(name="Reels", slug="reels")
    Product.objects.create(category=reels, title="Spinning Reel", slug="spinning-reel", price_cents=2999, stock=10_000)
    legacy_api.start()
    stack = LegacyOnly(legacy_api.base)
    rates = [calibrate_legacy(stack, QUICK) for _ in range(2)]

    placed = Order.objects.filter(reference__startswith="calibrate-", status=Order.Status.PLACED)
    # Every completion counted is an order of its own: the second calibration replayed none.
    counted = sum(rates) * QUICK.calibrate_seconds
    assert placed.count() == placed.values("reference").distinct().count()
    assert placed.count() >= 0.9 * counted
    assert min(rates) > 0
