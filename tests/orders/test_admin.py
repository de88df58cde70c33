"""The merchants' admin of the hot path: allocations, orders with history, dead letters, the
live queue view."""

import re

import pytest

from orders import placement
from orders.admin import LIVE_REFRESH_SECONDS
from orders.models import HotOrder, OrderStage, SaleAllocation
from tests.orders.conftest import APPROVED_CARD, order_body, order_claimed, post_order


@pytest.fixture(autouse=True)
def monolith_urls(settings):
    settings.ROOT_URLCONF = "config.urls_monolith"


@pytest.fixture
def order(client, allocation, settings):
    settings.ROOT_URLCONF = "config.urls_hotpath"
    post_order(client, order_body())
    settings.ROOT_URLCONF = "config.urls_monolith"
    return HotOrder.objects.get()


def test_order_list_and_page_show_stage_and_history_but_never_the_card(admin_client, order):
    listing = admin_client.get("/admin/orders/hotorder/?stage__exact=queued&q=" + order.customer_email)
    assert listing.status_code == 200
    html = listing.content.decode()
    assert order.number in html and "•••• 4242" in html and APPROVED_CARD not in html
    page = admin_client.get(f"/admin/orders/hotorder/{order.pk}/change/").content.decode()
    assert "accepted by the hot path" in page  # the stage history inline
    assert APPROVED_CARD not in page and order.token not in page


# Editing an open sale (its hold moves with it) is in test_sale_admin.py, against the legacy API.


def test_allocation_cannot_go_below_what_is_taken(admin_client, allocation, order):
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=5)
    response = admin_client.post(
        f"/admin/orders/saleallocation/{allocation.pk}/change/",
        {"product": allocation.product_id, "is_hot": "on", "allocated": 4, "per_order_limit": 2},
    )
    assert response.status_code == 200 and "At least 6" in response.content.decode()


def test_dead_letters_are_listed_and_redriven_from_the_admin(admin_client, order):
    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503 (after 9 attempts)")
    listing = admin_client.get("/admin/orders/deadletter/")
    assert "legacy API answered 503" in listing.content.decode()
    letter = order.dead_letters.get()
    response = admin_client.post(
        "/admin/orders/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]}, follow=True
    )
    assert "1 order(s) queued again" in response.content.decode()
    order.refresh_from_db()
    assert order.stage == OrderStage.QUEUED


def test_live_view_shows_queue_depth_and_orders_per_minute(admin_client, order):
    response = admin_client.get("/admin/orders/hotorder/live/")
    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats["queued"] == 1 and stats["outbox"] == 1
    assert stats["last_minute_accepted"] == 1
    assert "Orders per minute" in response.content.decode()


def test_live_view_says_the_rate_it_reloads_at(admin_client, order):
    html = admin_client.get("/admin/orders/hotorder/live/").content.decode()
    seconds = re.search(r'<meta http-equiv="refresh" content="(\d+)">', html).group(1)
    assert f"Refreshes every {seconds} seconds." in html


def test_live_view_lists_the_latest_minute_first_and_still_reloads_itself(admin_client, order):
    html = admin_client.get("/admin/orders/hotorder/live/").content.decode()
    table = html.split("<h2>Orders per minute</h2>", 1)[1].split("</table>", 1)[0]
    accepted = re.findall(r"<tr><td>\d\d:\d\d</td><td>(\d+)</td>", table)
    # The order just accepted is in the latest minute, at the top where a merchant looks.
    assert accepted == ["1"] + ["0"] * 9
    assert f'<meta http-equiv="refresh" content="{LIVE_REFRESH_SECONDS}">' in html


def test_the_order_page_shows_the_unit_price_as_a_price(admin_client, order):
    page = admin_client.get(f"/admin/orders/hotorder/{order.pk}/change/").content.decode()
    assert re.search(r"<label>Unit price:</label>\s*<div class=\"readonly\">\$149\.99</div>", page)
    assert "Unit price cents" not in page and 'name="unit_price_cents"' not in page


def test_live_view_is_for_staff_only(client, db):
    response = client.get("/admin/orders/hotorder/live/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_who_may_only_look_cannot_switch_the_hot_path_or_redrive(viewer, order):
    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503 (after 9 attempts)")
    allocation = SaleAllocation.objects.get()
    letter = order.dead_letters.get()

    off = viewer.post("/admin/orders/saleallocation/", {"action": "make_not_hot", "_selected_action": [allocation.pk]})
    redrive = viewer.post("/admin/orders/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]})
    again = viewer.post("/admin/orders/hotorder/", {"action": "redrive", "_selected_action": [order.pk]})

    assert (off.status_code, redrive.status_code, again.status_code) == (403, 403, 403)
    assert SaleAllocation.objects.get().is_hot
    order.refresh_from_db()
    assert order.stage == OrderStage.DEAD_LETTERED


def test_the_live_view_needs_a_permission_not_just_staff(nobody, viewer, order):
    assert nobody.get("/admin/orders/hotorder/live/").status_code == 403
    assert viewer.get("/admin/orders/hotorder/live/").status_code == 200


def test_live_view_counts_declined_orders_as_failed_not_completed(admin_client, order):
    order_claimed(order.pk)
    placement.order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED, detail="declined")

    stats = admin_client.get("/admin/orders/hotorder/live/").context["stats"]

    assert stats["last_minute_completed"] == 0
    assert stats["last_minute_failed"] == 1


def test_a_dead_letter_is_settled_by_a_redrive_or_a_cancel_never_deleted(admin_client, order):
    """Deleted, it took its order, still holding its units, off the dead letters' list and the
    dashboard's count, and its closing sale kept its hold."""
    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 401 (after 9 attempts)")
    letter = order.dead_letters.get()

    assert admin_client.get(f"/admin/orders/deadletter/{letter.pk}/delete/").status_code == 403
    listing = admin_client.get("/admin/orders/deadletter/").content.decode()
    assert 'value="delete_selected"' not in listing
    assert order.dead_letters.exists()


def test_a_buyer_s_email_finds_dead_letters_only_for_staff_who_may_see_hot_orders(order, django_user_model):
    """The list shows no email: a search by one would tell a letter-only viewer the buyer's
    address, one letter at a time (`?q=a@`, `?q=an@` ...)."""
    from django.contrib.auth.models import Permission

    from tests.conftest import _staff_client

    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503 (after 9 attempts)")
    letters = Permission.objects.filter(content_type__app_label="orders", codename="view_deadletter")
    orders = Permission.objects.filter(content_type__app_label="orders", codename="view_hotorder")
    letters_only = _staff_client(django_user_model, "letters", letters)
    support = _staff_client(django_user_model, "support", letters | orders)
    prefix = order.customer_email[:6]

    def found(client, q: str) -> int:
        return client.get("/admin/orders/deadletter/", {"q": q}).context["cl"].result_count

    assert (found(letters_only, prefix), found(letters_only, order.number)) == (0, 1)
    assert found(support, prefix) == 1


def test_a_redrive_that_queues_nothing_warns_and_says_why_rather_than_reporting_success(admin_client, order):
    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503 (after 9 attempts)")
    letter = order.dead_letters.get()
    redrive = {"action": "redrive", "_selected_action": [letter.pk]}
    admin_client.post("/admin/orders/deadletter/", redrive, follow=True)

    again = admin_client.post("/admin/orders/deadletter/", redrive, follow=True)
    said = [(m.level_tag, m.message) for m in again.context["messages"]]
    assert said == [("warning", "No order queued again: each was already redriven or settled.")]
    by_order = {"action": "redrive", "_selected_action": [order.pk]}
    again = admin_client.post("/admin/orders/hotorder/", by_order, follow=True)
    [(level, message)] = [(m.level_tag, m.message) for m in again.context["messages"]]
    assert (level, message.startswith("No order queued again: none of them is dead-lettered now")) == ("warning", True)
