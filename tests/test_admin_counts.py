"""The admin's lists of every order (the sale's, the storefront's receipts, the legacy API's
orders of record) grow with each sale: each page counts its own rows once, and not the whole
table a second time for the "(N total)" beside a filtered count."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monolith_urls(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orders/hotorder/",
        "/admin/orders/hotorder/?stage__exact=queued",
        "/admin/shop/placedorder/",
        "/admin/shop/placedorder/?q=ada",
        "/admin/legacy_api/order/",
        "/admin/legacy_api/order/?status__exact=placed",
    ],
)
def test_an_order_list_counts_its_rows_once(admin_client, path):
    with CaptureQueriesContext(connection) as sent:
        response = admin_client.get(path)

    assert response.status_code == 200
    counts = [query["sql"] for query in sent.captured_queries if "COUNT(" in query["sql"]]
    assert len(counts) == 1, counts
