"""The hot path never sells a product a merchant took off sale: every write to the catalogue,
bulk admin actions included, moves the cached product's version, and the acceptance statement
checks the product in the database anyway. Plus-addressing does not dodge the email throttle."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F

from orders.models import SaleAllocation
from orders.selectors import hot_product_get, product_cache_key, product_memo_forget
from shop.catalogue_version import catalogue_version
from shop.models import Product
from shop.order_input import mailbox_key
from tests.orders.conftest import nothing_reserved, order_body, post_order


def another_process_reads() -> dict | None:
    """The product as a process that cached it earlier sees it now (its own copy gone)."""
    product_memo_forget()
    return hot_product_get(category="rods", product="muskie-casting-rod")


def test_a_bulk_admin_action_taking_products_off_sale_reaches_the_hot_path(
    admin_client, client, allocation, settings, django_capture_on_commit_callbacks
):
    assert another_process_reads()["is_on_sale"]
    settings.ROOT_URLCONF = "config.urls_monolith"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/shop/product/", {"action": "mark_inactive", "_selected_action": [allocation.product_id]}
        )

    assert response.status_code == 302
    assert not another_process_reads()["is_on_sale"]
    settings.ROOT_URLCONF = "config.urls_hotpath"
    refused = post_order(client, order_body())
    assert refused.status_code == 404 and refused.json()["error"] == "not_on_sale"
    assert nothing_reserved(allocation)


def test_a_bulk_update_of_the_allocation_reaches_the_hot_path(allocation, django_capture_on_commit_callbacks):
    assert another_process_reads()["is_hot"]

    with django_capture_on_commit_callbacks(execute=True):
        SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=False)

    assert not another_process_reads()["is_hot"]


def test_stock_and_reservation_counters_leave_the_cached_product_alone(allocation, django_capture_on_commit_callbacks):
    another_process_reads()
    version = catalogue_version()

    with django_capture_on_commit_callbacks(execute=True):
        Product.objects.filter(pk=allocation.product_id).update(stock=F("stock") - 1)
        SaleAllocation.objects.filter(pk=allocation.pk).update(reserved=F("reserved") + 1)

    assert catalogue_version() == version
    assert product_cache_key("muskie-casting-rod").endswith(f"{version}:muskie-casting-rod")


def test_acceptance_refuses_a_product_off_sale_even_when_the_cache_says_otherwise(client, allocation):
    assert another_process_reads()["is_on_sale"]
    with connection.cursor() as cursor:  # behind the cache's back: no signal, no new version
        cursor.execute("UPDATE shop_product SET is_active = FALSE WHERE id = %s", [allocation.product_id])
    assert hot_product_get(category="rods", product="muskie-casting-rod")["is_on_sale"], "the cache is stale"

    response = post_order(client, order_body())

    assert response.status_code == 404 and response.json()["error"] == "not_on_sale"
    assert nothing_reserved(allocation)


def test_acceptance_refuses_a_deleted_product_behind_a_stale_cache(client, allocation):
    another_process_reads()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET deleted_at = CURRENT_TIMESTAMP WHERE id = %s", [allocation.product_id])

    response = post_order(client, order_body())

    assert response.status_code == 404 and response.json()["error"] == "not_on_sale"
    assert nothing_reserved(allocation)


@pytest.mark.parametrize(
    ("email", "counted_as"),
    [
        ("Ann+sale1@Example.com", "ann@example.com"),
        ("ann+a+b@example.com", "ann@example.com"),
        ("ann@example.com", "ann@example.com"),
        ("+tag@example.com", "+tag@example.com"),
        # The domain as mail is sent to it (shop.order_input.email_key).
        ("ann+1@\uff45xample.com", "ann@example.com"),
        ("Ann@B\u00dcCHER.de", "ann@xn--bcher-kva.de"),
    ],
)
def test_the_email_throttle_counts_one_buyer_per_mailbox(email, counted_as):
    assert mailbox_key(email) == counted_as


def test_plus_addressing_does_not_dodge_the_email_throttle(client, allocation, settings, counting_clock_pinned):
    # The clock stands still: three requests that straddle a window's edge would be counted in two windows.
    settings.ORDERS_THROTTLE_PER_EMAIL = 2

    answers = [
        post_order(client, order_body(email=email), REMOTE_ADDR=f"10.0.0.{n}").status_code
        for n, email in enumerate(["ann+1@example.com", "ANN+2@example.com", "ann+3@example.com"], start=1)
    ]

    assert answers == [202, 202, 429]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_sale_opened_elsewhere_is_served_at_once_by_a_process_that_just_saw_it_closed(
    processes, process_env, allocation
):
    """The route comes on just after the sale opens: a server process that answered the product
    "not hot" a moment before serves the sale's page and takes its orders at once (not a 404 for
    the rest of its copy's second). Real gunicorn, one thread, with the edge's routes."""
    from django.core.management import call_command

    from tests.edge.conftest import ensure_origins
    from tests.orders.all_in_one import all_in_one_start
    from tests.orders.conftest import ORDERS_URL, PREFIX, http_json

    allocation.is_hot = False
    allocation.save()
    ensure_origins()
    call_command("edge_route", "add", "muskie-sale", PREFIX + "*", "--origin", "hotpath", "--enable")
    base = all_in_one_start(processes, process_env, workers=1, threads=1)
    for _ in range(2):  # the one thread has the product, not hot, from its last request
        assert http_json("GET", base + PREFIX + "stock")[0] == 404

    allocation.is_hot = True  # the merchant opens the sale in another process
    allocation.save()
    page = http_json("GET", base + PREFIX + "stock")
    status, body, headers = http_json("POST", base + ORDERS_URL, order_body(), {"Idempotency-Key": "opened-1"})

    assert page[0] == 200 and page[1]["state"] == "open", page
    assert status == 202 and headers["X-Edge-Route"] == "muskie-sale", (status, body)
