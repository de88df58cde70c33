"""The merchant's admin for orders of record (search, filters, lines inline, money read-only)
and for callers' tokens (shown once, kept hashed, revoked)."""

import hashlib
import re

import pytest
from django.contrib import admin
from django.urls import path

from legacy_api.holds import hold_create
from legacy_api.models import ApiToken, Order
from legacy_api.services import LineRequest, order_place
from legacy_api.tokens import token_caller, token_create

# The admin alone, so these tests do not depend on the rest of the monolith's URLs.
urlpatterns = [path("admin/", admin.site.urls)]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def admin_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def two_orders(muskie_rod, tourney_rod) -> list[Order]:
    return [
        order_place(
            reference=reference,
            customer_name=name,
            customer_email=email,
            lines=[LineRequest(product=product, quantity=1)],
            card_number="4242424242424242",
        )[0]
        for reference, name, email, product in (
            ("adm-1", "Ada Angler", "ada@example.com", "muskie-casting-rod"),
            ("adm-2", "Bob Bass", "bob@example.com", "tourney-casting-rod"),
        )
    ]


def test_staff_finds_an_order_by_number(admin_client, two_orders):
    response = admin_client.get("/admin/legacy_api/order/", {"q": two_orders[1].number})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [two_orders[1]]


def test_staff_finds_an_order_by_reference_or_email(admin_client, two_orders):
    by_reference = admin_client.get("/admin/legacy_api/order/", {"q": "adm-1"})
    by_email = admin_client.get("/admin/legacy_api/order/", {"q": "bob@example.com"})

    assert list(by_reference.context["cl"].result_list) == [two_orders[0]]
    assert list(by_email.context["cl"].result_list) == [two_orders[1]]


def test_staff_filters_orders_by_status(admin_client, two_orders):
    response = admin_client.get("/admin/legacy_api/order/", {"status__exact": "placed"})
    assert response.context["cl"].result_count == 2


def test_order_page_shows_its_lines_and_keeps_everything_read_only(admin_client, two_orders):
    order = two_orders[0]
    response = admin_client.get(f"/admin/legacy_api/order/{order.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "Muskie Casting Rod" in content
    assert "149.99" in content
    form_fields = response.context["adminform"].form.fields
    assert "total_cents" not in form_fields
    assert "card_last4" not in form_fields
    # Its status neither: set back to pending (a request still placing it), it answered "in
    # progress" to every retry and lookup for good.
    assert set(form_fields) == set()


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client, two_orders):
    assert admin_client.get("/admin/legacy_api/order/add/").status_code == 403
    assert admin_client.get(f"/admin/legacy_api/order/{two_orders[0].pk}/delete/").status_code == 403


def test_non_staff_are_sent_to_the_login(client, django_user_model, two_orders):
    user = django_user_model.objects.create_user(username="angler", password="not-staff-123")
    client.force_login(user)

    response = client.get("/admin/legacy_api/order/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_holds_are_listed_with_their_owner_and_filtered_by_it(admin_client, muskie_rod):
    hold_create(reference="sale-1", product="muskie-casting-rod", quantity=2, caller="hotpath")
    hold_create(reference="sale-1", product="muskie-casting-rod", quantity=1, caller="storefront")

    listing = admin_client.get("/admin/legacy_api/hold/")
    filtered = admin_client.get("/admin/legacy_api/hold/", {"caller": "hotpath"})

    assert listing.status_code == 200
    assert "Owner" in listing.content.decode()
    assert {(hold.reference, hold.caller) for hold in listing.context["cl"].result_list} == {
        ("sale-1", "hotpath"),
        ("sale-1", "storefront"),
    }
    assert [hold.caller for hold in filtered.context["cl"].result_list] == ["hotpath"]


def test_an_order_shows_the_caller_that_placed_it(admin_client, two_orders):
    response = admin_client.get(f"/admin/legacy_api/order/{two_orders[0].pk}/change/")

    assert response.status_code == 200
    assert two_orders[0].caller == "hotpath"
    assert "Caller" in response.content.decode() and "hotpath" in response.content.decode()


# --- Callers' tokens ----------------------------------------------------------------------------


def test_adding_a_token_shows_it_once_and_keeps_only_its_hash(admin_client, anonymous_client, settings):
    settings.ROOT_URLCONF = "tests.legacy_api.test_admin_urls"
    response = admin_client.post("/admin/legacy_api/apitoken/add/", {"caller": "merchant", "label": "ops"})

    # Shown on the answer itself, never kept for the next page: a message would carry it there
    # in a cookie, signed but readable by anyone who sees the cookie.
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert "messages" not in response.cookies and not list(response.context["messages"])
    token = re.search(r'<code id="new-token"[^>]*>([^<]+)</code>', response.content.decode())[1]
    row = ApiToken.objects.get(label="ops")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in admin_client.get(f"/admin/legacy_api/apitoken/{row.pk}/change/").content.decode()
    # The token shown works over HTTP as the merchant.
    stats = anonymous_client.get("/legacy-api/stats", headers={"Authorization": f"Bearer {token}"})
    assert stats.status_code == 200


def test_a_token_of_an_unknown_caller_cannot_be_added(admin_client):
    response = admin_client.post("/admin/legacy_api/apitoken/add/", {"caller": "somebody", "label": "x"})

    assert response.status_code == 200  # the form again, with its error
    assert "caller" in response.context["adminform"].form.errors
    assert not ApiToken.objects.filter(label="x").exists()


def test_tokens_are_listed_and_revoked_not_deleted(admin_client):
    row, token = token_create(caller="storefront", label="old shop")

    listing = admin_client.get("/admin/legacy_api/apitoken/")
    admin_client.post("/admin/legacy_api/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})

    assert "old shop" in listing.content.decode()
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert token_caller(token=token) is None
    assert admin_client.get(f"/admin/legacy_api/apitoken/{row.pk}/delete/").status_code == 403


def test_a_revoked_token_s_history_says_who_revoked_it(admin_client, admin_user):
    row, _ = token_create(caller="hotpath", label="workers")

    admin_client.post("/admin/legacy_api/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})

    history = admin_client.get(f"/admin/legacy_api/apitoken/{row.pk}/history/").context["action_list"]
    assert [(entry.user, entry.get_change_message()) for entry in history] == [(admin_user, "Revoked.")]
