"""The hot path over HTTP (Django's test client on the hot-path URLconf): the buy-now page,
order acceptance with its refusals, and status polling."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from orders import selectors
from orders.models import HotOrder, OrderStage, OutboxMessage, SaleAllocation, SaleState
from orders.placement import order_complete, order_fail
from orders.selectors import product_memo_forget, status_cache_key
from tests.orders.conftest import ORDERS_URL, PREFIX, nothing_reserved, order_body, order_claimed, post_order


# --- Buy-now page ----------------------------------------------------------------------------
def test_buy_now_page_shows_product_price_and_remaining_allocation(client, allocation):
    SaleAllocation.objects.filter(pk=allocation.pk).update(reserved=3, sold=4)
    response = client.get(PREFIX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Muskie Casting Rod" in html and "$149.99" in html
    assert 'only <span class="left">13</span> left' in html
    assert 'id="buy"' in html and 'data-orders-url="/shop/rods/muskie-casting-rod/orders"' in html
    assert "shop/sale.js" in html


def test_buy_now_page_is_served_from_the_cache_not_the_catalogue(client, allocation, django_assert_num_queries):
    client.get(PREFIX)
    with django_assert_num_queries(0):
        assert client.get(PREFIX).status_code == 200


def test_buy_now_page_follows_a_merchant_change(client, product, allocation, django_capture_on_commit_callbacks):
    client.get(PREFIX)
    with django_capture_on_commit_callbacks(execute=True):
        product.price_cents = 9999
        product.save()
        allocation.allocated = 50
        allocation.save()
    html = client.get(PREFIX).content.decode()
    assert "$99.99" in html and "50 in this sale" in html


def test_buy_now_page_of_a_product_that_is_not_hot_is_not_found(client, allocation):
    allocation.is_hot = False
    allocation.state = SaleState.DRAFT
    allocation.save()
    assert client.get(PREFIX).status_code == 404
    assert client.get("/shop/rods/no-such-rod/").status_code == 404


@pytest.mark.parametrize("state", [SaleState.CLOSING, SaleState.CLOSED])
def test_the_page_of_a_sale_closed_while_the_edge_still_sends_it_here_says_it_ended(client, allocation, state):
    # nginx's and CloudFront's routes send the product's pages here until the next export: the
    # buyer was shown the 404 page ("That one got away.") for a product the shop still sells.
    SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=False, state=state)
    allocation.save(update_fields=["updated_at"])  # as a close replaces the cached product

    page = client.get(PREFIX)

    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert "This flash sale has ended" in html and "This sale has ended and takes no more orders." in html
    assert re.search(r'<form id="buy"[^>]*\shidden>', html) and 'href="/shop/rods/"' in html


def test_stock_endpoint_reports_remaining_and_sold_out(client, allocation, django_capture_on_commit_callbacks):
    assert client.get(PREFIX + "stock").json() == {
        "remaining": 20,
        "allocated": 20,
        "state": "open",
        "price_cents": 14999,
        "starts_at": None,
    }
    with django_capture_on_commit_callbacks(execute=True):
        SaleAllocation.objects.filter(pk=allocation.pk).update(sold=20)
        allocation.save(update_fields=["updated_at"])  # a merchant's save drops the cached figure
    assert client.get(PREFIX + "stock").json()["state"] == "sold_out"


def test_the_stock_and_a_status_url_answer_head_as_get_without_the_body(client, allocation):
    url = post_order(client, order_body()).json()["status_url"]

    for path in (PREFIX + "stock", url):
        head = client.head(path)
        assert head.status_code == 200 and head["Content-Type"] == "application/json" and not head.content


# --- Acceptance ------------------------------------------------------------------------------
def test_order_is_accepted_with_number_status_url_location_and_retry_after(client, allocation):
    response = post_order(client, order_body(quantity=2))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing"
    assert body["number"].startswith("T") and body["number"][1:].isdigit()
    assert body["status_url"].startswith(PREFIX + "orders/" + body["number"] + "/")
    assert response["Location"] == body["status_url"]
    assert int(response["Retry-After"]) > 0
    allocation.refresh_from_db()
    assert allocation.reserved == 2
    order = HotOrder.objects.get()
    assert order.stage == OrderStage.QUEUED and order.card_last4 == "4242"
    # Not yet published (the commit has not happened in this test): the outbox holds it.
    assert OutboxMessage.objects.filter(order=order).exists()


def test_order_numbers_are_unique_and_increasing(client, allocation):
    numbers = [post_order(client, order_body()).json()["number"] for _ in range(3)]
    assert len(set(numbers)) == 3
    assert [int(n[1:]) for n in numbers] == sorted(int(n[1:]) for n in numbers)


def test_same_key_and_body_gives_the_same_answer_and_one_order(client, allocation):
    body = order_body()
    first = post_order(client, body, key="key-1")
    again = post_order(client, body, key="key-1")
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert HotOrder.objects.count() == 1
    allocation.refresh_from_db()
    assert allocation.reserved == 1


def test_a_replay_gets_the_first_answer_even_after_the_sale_ended(
    client, allocation, django_capture_on_commit_callbacks
):
    body = order_body()
    first = post_order(client, body, key="key-1")
    with django_capture_on_commit_callbacks(execute=True):
        allocation.ends_at = timezone.now() - timedelta(seconds=1)
        allocation.save()
    again = post_order(client, body, key="key-1")
    assert (again.status_code, again.json()) == (202, first.json())
    assert post_order(client, order_body(), key="key-2").json()["error"] == "sale_ended"


def test_a_replay_gets_the_first_answer_once_sold_out_and_sold_out_answers_are_not_throttled(
    client, allocation, settings, throttle_cache
):
    settings.ORDERS_THROTTLE_PER_EMAIL = 2
    allocation.allocated = 1
    allocation.save()
    body = order_body(email="last@example.com")
    first = post_order(client, body, key="key-1")
    # The next buyers are refused by the allocation, then from the cached figure.
    for i in range(4):
        refused = post_order(client, order_body(email="late@example.com"), key=f"late-{i}")
        assert refused.json() == {"error": "sold_out", "detail": "Sold out.", "remaining": 0}
    again = post_order(client, body, key="key-1")
    assert (again.status_code, again.json()) == (202, first.json())
    allocation.refresh_from_db()
    assert (allocation.reserved, HotOrder.objects.count()) == (1, 1)


def test_same_key_with_another_body_is_refused(client, allocation):
    post_order(client, order_body(email="ann@example.com"), key="key-1")
    response = post_order(client, order_body(email="ann@example.com", quantity=2), key="key-1")
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert HotOrder.objects.count() == 1


@pytest.mark.parametrize("key", [None, "", "k" * 256])
def test_missing_or_overlong_key_is_refused_and_nothing_reserved(client, allocation, key):
    response = post_order(client, order_body(), key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]
    assert nothing_reserved(allocation)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ({"quantity": "two", "customer": {"name": "A", "email": "a@example.com"}}, "quantity"),
        (order_body(email="nope"), "customer.email"),
        (order_body(email='"\x0b"@example.com'), "customer.email"),
        (order_body(email="ann@exa\u200bmple.com"), "customer.email"),
        (order_body(card="1234"), "payment.card_number"),
        (order_body(quantity=3), "quantity"),  # above the per-order limit of 2
    ],
)
def test_bad_input_names_the_field_and_reserves_nothing(client, allocation, body, field):
    response = post_order(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    # The one error shape of every API: each field named with a list of messages.
    assert response.json()["fields"][field] and isinstance(response.json()["fields"][field], list)
    assert nothing_reserved(allocation)


def test_sold_out_is_answered_at_once_with_409(client, allocation):
    allocation.allocated = 3
    allocation.save()
    assert post_order(client, order_body(quantity=2)).status_code == 202
    response = post_order(client, order_body(quantity=2))
    assert response.status_code == 409
    # Fewer left than asked for: the buyer hears how many they may still order.
    assert response.json() == {"error": "sold_out", "detail": "Only 1 left: order 1 or fewer.", "remaining": 1}
    assert post_order(client, order_body(quantity=1)).status_code == 202
    assert post_order(client, order_body(quantity=1)).json()["error"] == "sold_out"
    allocation.refresh_from_db()
    assert (allocation.reserved, HotOrder.objects.count()) == (3, 2)


@pytest.mark.parametrize(("level", "logged"), [("ERROR", False), ("WARNING", True)])
def test_sold_out_answers_are_logged_only_where_the_settings_keep_4xx_warnings(
    client, allocation, caplog, level, logged
):
    allocation.allocated = 0
    allocation.save()
    caplog.set_level(level, logger="django.request")
    assert post_order(client, order_body(quantity=1)).status_code == 409
    conflicts = [r for r in caplog.records if r.name == "django.request" and r.getMessage().startswith("Conflict")]
    assert len(conflicts) == (1 if logged else 0)


def test_released_stock_can_be_bought_again(client, allocation):
    allocation.allocated = 1
    allocation.save()
    number = post_order(client, order_body()).json()["number"]
    assert post_order(client, order_body()).status_code == 409
    order_claimed(HotOrder.objects.get(number=number).pk)
    order_fail(order_id=HotOrder.objects.get(number=number).pk, stage=OrderStage.CARD_DECLINED)
    cache.clear()  # the commit that drops the cached figure does not happen inside this test
    assert post_order(client, order_body()).status_code == 202


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"is_hot": False}, 404, "not_hot"),
        ({"starts_at": timezone.now() + timedelta(hours=1)}, 409, "sale_not_started"),
        ({"ends_at": timezone.now() - timedelta(minutes=1)}, 409, "sale_ended"),
    ],
)
def test_product_not_hot_or_outside_its_window_is_refused(client, allocation, change, status, error):
    for name, value in change.items():
        setattr(allocation, name, value)
    allocation.save()
    response = post_order(client, order_body())
    assert response.status_code == status
    assert response.json()["error"] == error
    assert nothing_reserved(allocation)


def test_product_taken_off_sale_or_unknown_is_refused(client, product, allocation):
    product.soft_delete()
    response = post_order(client, order_body())
    assert response.status_code == 404 and response.json()["error"] == "not_on_sale"
    assert post_order(client, order_body(), url="/shop/rods/no-such-rod/orders").status_code == 404
    assert post_order(client, order_body(), url="/shop/reels/muskie-casting-rod/orders").status_code == 404
    assert nothing_reserved(allocation)


def test_window_is_enforced_by_the_reservation_even_with_a_stale_cache(client, allocation):
    client.get(PREFIX)  # caches the product as open
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    response = post_order(client, order_body())
    assert response.status_code == 409 and response.json()["error"] == "sale_ended"
    assert nothing_reserved(allocation)


def test_one_client_is_throttled_per_email_and_per_ip(client, allocation, settings, throttle_cache):
    settings.ORDERS_THROTTLE_PER_EMAIL = 2
    settings.ORDERS_THROTTLE_PER_IP = 4
    allocation.per_order_limit = 1
    allocation.save()
    codes = [post_order(client, order_body(email="greedy@example.com")).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    codes = [post_order(client, order_body()).status_code for _ in range(2)]
    assert codes == [202, 429]  # the fifth request of this address
    refused = post_order(client, order_body(), REMOTE_ADDR="127.0.0.1")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert post_order(client, order_body(), REMOTE_ADDR="10.0.0.9").status_code == 202
    assert HotOrder.objects.count() == 4


def test_the_addresses_of_one_ipv6_network_share_its_throttle(client, allocation, settings, throttle_cache):
    settings.ORDERS_THROTTLE_PER_IP = 2
    settings.ORDERS_THROTTLE_PER_EMAIL = 100
    allocation.per_order_limit = 1
    allocation.save()
    codes = [post_order(client, order_body(), REMOTE_ADDR=f"2001:db8:7:7::{n:x}").status_code for n in range(1, 4)]
    assert codes == [202, 202, 429]
    assert post_order(client, order_body(), REMOTE_ADDR="2001:db8:7:8::1").status_code == 202


def test_behind_a_proxy_the_throttle_counts_the_address_the_proxy_saw_not_what_the_client_sent(
    client, allocation, settings, throttle_cache
):
    settings.ORDERS_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ORDERS_THROTTLE_PER_IP = 2
    settings.ORDERS_THROTTLE_PER_EMAIL = 100
    allocation.per_order_limit = 1
    allocation.save()
    # The first entries are the client's own invention; nginx appended the last one.
    codes = [
        post_order(client, order_body(), key=f"k{i}", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.7").status_code
        for i in range(3)
    ]
    assert codes == [202, 202, 429]
    other = post_order(client, order_body(), key="k9", HTTP_X_FORWARDED_FOR="10.9.9.1, 203.0.113.8")
    assert other.status_code == 202


def test_replays_of_one_key_do_not_count_against_the_throttle(client, allocation, settings, throttle_cache):
    settings.ORDERS_THROTTLE_PER_EMAIL = 1
    body = order_body()
    codes = {post_order(client, body, key="same").status_code for _ in range(5)}
    assert codes == {202}


# --- Status ----------------------------------------------------------------------------------
def test_status_url_still_answers_from_the_monolith_once_the_route_is_switched_off(client, allocation, settings):
    url = post_order(client, order_body()).json()["status_url"]
    settings.ROOT_URLCONF = "config.urls_monolith"
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["status"] == "processing"
    assert client.get(url[:-4] + "xxxx").status_code == 404


def test_status_url_shows_the_order_and_never_touches_the_legacy_api(client, allocation, settings):
    settings.LEGACY_API_URL = "http://127.0.0.1:9/nowhere"
    url = post_order(client, order_body()).json()["status_url"]
    response = client.get(url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"number", "status", "stage", "detail"}
    assert (body["status"], body["stage"]) == ("processing", "queued")
    assert response["Cache-Control"] == "no-store"


def test_status_is_read_from_the_read_model(client, allocation, django_assert_num_queries):
    url = post_order(client, order_body()).json()["status_url"]
    client.get(url)  # fills the read model on a miss
    with django_assert_num_queries(0):
        assert client.get(url).status_code == 200


def test_status_with_a_wrong_token_or_another_buyers_number_is_not_found(client, allocation):
    mine = post_order(client, order_body()).json()
    theirs = post_order(client, order_body()).json()
    my_token = mine["status_url"].rsplit("/", 1)[1]
    other_token = my_token[:-1] + ("A" if my_token[-1] != "A" else "B")
    for url in (
        f"{PREFIX}orders/{mine['number']}/{other_token}",
        f"{PREFIX}orders/{theirs['number']}/{my_token}",
        f"{PREFIX}orders/T999999/{my_token}",
        mine["status_url"].replace("/rods/", "/reels/"),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert mine["number"] not in response.content.decode()
    assert client.get(mine["status_url"]).status_code == 200


def test_status_url_still_answers_once_the_closed_sale_is_deleted(client, admin_client, allocation, settings):
    """The 202's status URL answers for the order's lifetime: the merchant may delete a closed sale."""
    url = post_order(client, order_body()).json()["status_url"]
    order = HotOrder.objects.get()
    order_claimed(order.pk)
    order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    SaleAllocation.objects.filter(pk=allocation.pk).update(state=SaleState.CLOSED, is_hot=False)
    settings.ROOT_URLCONF = "config.urls_monolith"
    page = admin_client.post(f"/admin/orders/saleallocation/{allocation.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302 and not SaleAllocation.objects.exists()
    cache.clear()
    product_memo_forget()
    response = client.get(url)
    assert (response.status_code, response.json()["status"]) == (200, "complete")
    assert "L00000007" not in response.json()["detail"]  # the buyer's order number is its own alone
    assert client.get(url.replace("/rods/", "/reels/")).status_code == 404


@pytest.mark.django_db(transaction=True)  # the completion refreshes the entry once committed
def test_a_poll_racing_a_late_completion_does_not_keep_the_failed_answer(client, allocation, monkeypatch):
    """A failed order the legacy API turns out to have placed completes late; a poll that read
    the failed order just before must not leave that answer in the read model after it."""
    url = post_order(client, order_body()).json()["status_url"]
    order = HotOrder.objects.get()
    order_claimed(order.pk)
    order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED, detail="declined")
    cache.delete(status_cache_key(order.number))
    read_entry = selectors.status_entry

    def entry_while_the_order_completes(read):
        # The poll has read the failed order; the late completion commits and refreshes the entry.
        order_complete(order_id=order.pk, legacy_order_id=9, legacy_number="L00000009")
        return read_entry(read)

    monkeypatch.setattr(selectors, "status_entry", entry_while_the_order_completes)
    client.get(url)
    monkeypatch.setattr(selectors, "status_entry", read_entry)
    assert client.get(url).json()["status"] == "complete"


def test_status_follows_the_order_to_its_end(client, allocation, django_capture_on_commit_callbacks):
    url = post_order(client, order_body()).json()["status_url"]
    order = HotOrder.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        order_claimed(order.pk)
        order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED)
    assert cache.get(status_cache_key(order.number))["status"] == "failed"
    body = client.get(url).json()
    assert (body["status"], body["stage"]) == ("failed", "card_declined")
    assert "declined" in body["detail"]


def test_orders_endpoint_only_accepts_post(client, allocation):
    assert client.get(ORDERS_URL).status_code == 405


def test_a_missing_key_and_a_bad_body_are_named_in_one_answer(client, allocation):
    body = order_body(quantity=3)
    body["customer"]["email"] = "not-an-email"

    response = post_order(client, body, key=None)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"Idempotency-Key", "quantity", "customer.email"}
    assert nothing_reserved(allocation)


def test_a_key_retried_over_a_limit_lowered_since_gets_its_order_or_422(
    client, allocation, django_capture_on_commit_callbacks
):
    body = order_body(quantity=2)
    first = post_order(client, body, key="k-limit")
    assert first.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        allocation.per_order_limit = 1
        allocation.save()

    replayed = post_order(client, body, key="k-limit")
    other = post_order(client, {**body, "customer": {"name": "Ann Angler", "email": "else@example.com"}}, key="k-limit")
    fresh = post_order(client, body, key="k-new")

    # The same body over the new limit is still the order it was: its 202, not a 400.
    assert replayed.status_code == 202 and replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == first.json()
    # Another body under a used key is a reused key, whatever the limit says.
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    # A fresh key over the limit is the limit's 400, naming the field.
    assert fresh.status_code == 400 and list(fresh.json()["fields"]) == ["quantity"]
    assert HotOrder.objects.count() == 1
