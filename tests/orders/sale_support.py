"""Helpers of the sale's tests: the legacy API served for real (over HTTP, on the test
database) and the stock of record's figures as it reports them."""

from __future__ import annotations

from django.apps import apps

import legacy_client
from legacy_client import Stock


def legacy_serve(settings, live_server) -> str:
    """Serves the all-in-one URLconf (legacy API included) from pytest-django's live server
    and points the legacy client at it; returns the legacy API's URL."""
    settings.ROOT_URLCONF = "config.urls"
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    return settings.LEGACY_API_URL


def stock(slug: str = "muskie-casting-rod") -> Stock:
    figures = legacy_client.stock_get(product=slug)
    assert figures is not None
    return figures


def hold_quantity(reference: str) -> int | None:
    hold = legacy_client.hold_get(reference=reference)
    return None if hold is None else hold.quantity


def legacy_lines_on_hold(reference: str) -> int:
    """Units of the legacy API's order lines drawn on this hold (read only)."""
    line = apps.get_model("legacy_api", "OrderLine")
    return sum(line.objects.filter(order__hold__reference=reference).values_list("quantity", flat=True))
