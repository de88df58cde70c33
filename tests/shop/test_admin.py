"""The merchant admin: product list and actions, categories with counts, read-only receipts."""

from __future__ import annotations

import pytest

from shop.models import PlacedOrder, Product

CHANGELIST = "/admin/shop/product/"


@pytest.fixture
def products(make_product):
    return [
        make_product("rod-a", title="Rod A", stock=0),
        make_product("rod-b", title="Rod B", stock=3),
        make_product("rod-c", title="Rod C", stock=50),
    ]


def run_action(admin_client, action: str, products, **extra):
    data = {"action": action, "_selected_action": [p.pk for p in products], **extra}
    return admin_client.post(CHANGELIST, data)


def test_the_product_list_shows_stock_states_and_filters(admin_client, products):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Sold out" in html and "Only 3 left" in html
    low = admin_client.get(CHANGELIST, {"stock_state": "low"}).content.decode()
    assert "Rod B" in low and "Rod A" not in low and "Rod C" not in low


def test_the_product_list_searches_titles_and_slugs(admin_client, products):
    html = admin_client.get(CHANGELIST, {"q": "rod-c"}).content.decode()

    assert "Rod C" in html and "Rod A" not in html


def test_mark_inactive_and_active(admin_client, products):
    run_action(admin_client, "mark_inactive", products[:2])
    assert list(Product.objects.filter(is_active=False).values_list("slug", flat=True)) == ["rod-a", "rod-b"]

    run_action(admin_client, "mark_active", products[:1])
    assert list(Product.objects.filter(is_active=False).values_list("slug", flat=True)) == ["rod-b"]


def test_soft_delete_and_restore(admin_client, products, client):
    run_action(admin_client, "soft_delete", products[2:])
    gone = Product.objects.get(slug="rod-c")
    assert gone.deleted_at is not None and not gone.is_active
    assert client.get("/shop/rods/rod-c/").status_code == 404
    deleted = admin_client.get(CHANGELIST, {"deleted": "yes"}).content.decode()
    assert "Rod C" in deleted and "Rod A" not in deleted

    run_action(admin_client, "restore", products[2:])
    run_action(admin_client, "mark_active", products[2:])
    assert client.get("/shop/rods/rod-c/").status_code == 200


def test_restock_asks_for_a_quantity_then_adds_it(admin_client, products):
    ask = run_action(admin_client, "restock", products[:2])
    assert ask.status_code == 200
    assert "Add this many" in ask.content.decode()

    done = run_action(admin_client, "restock", products[:2], apply="1", quantity="10")

    assert done.status_code == 302
    assert dict(Product.objects.values_list("slug", "stock")) == {"rod-a": 10, "rod-b": 13, "rod-c": 50}


def test_restock_refuses_a_quantity_below_one(admin_client, products):
    run_action(admin_client, "restock", products[:1], apply="1", quantity="0")

    assert Product.objects.get(slug="rod-a").stock == 0


def test_restock_past_the_most_a_stock_record_holds_is_refused_on_the_quantity_and_adds_to_none(admin_client, products):
    Product.objects.filter(slug="rod-c").update(stock=2_147_483_600)

    refused = run_action(admin_client, "restock", products[1:], apply="1", quantity="100")

    assert refused.status_code == 200
    errors = refused.context["form"].errors
    assert list(errors) == ["quantity"] and "would pass 2,147,483,647 units for rod-c" in errors["quantity"][0]
    assert dict(Product.objects.values_list("slug", "stock")) == {"rod-a": 0, "rod-b": 3, "rod-c": 2_147_483_600}


def test_categories_show_their_product_counts(admin_client, products):
    products[0].soft_delete()

    html = admin_client.get("/admin/shop/category/").content.decode()

    assert '<td class="field-product_count">2</td>' in html


def test_placed_orders_are_read_only(admin_client, db):
    order = PlacedOrder.objects.create(
        number="FS-1", legacy_id=1, reference="r-1", email="a@example.com", name="A", total_cents=1, processing_ms=1
    )

    assert "FS-1" in admin_client.get("/admin/shop/placedorder/").content.decode()
    assert admin_client.get("/admin/shop/placedorder/add/").status_code == 403
    assert admin_client.post(f"/admin/shop/placedorder/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PlacedOrder.objects.filter(pk=order.pk).exists()


def test_checkouts_in_doubt_are_listed_read_only(admin_client, client, django_user_model, db):
    from datetime import timedelta

    from django.utils import timezone

    from shop.models import PendingCheckout

    pending = PendingCheckout.objects.create(
        reference="r-in-doubt", tries=[{"name": "A"}], look_after=timezone.now() + timedelta(minutes=2)
    )

    assert "r-in-doubt" in admin_client.get("/admin/shop/pendingcheckout/").content.decode()
    assert admin_client.get("/admin/shop/pendingcheckout/add/").status_code == 403
    assert admin_client.post(f"/admin/shop/pendingcheckout/{pending.pk}/delete/", {"post": "yes"}).status_code == 403
    # Staff without the permission to look are not shown them.
    client.force_login(django_user_model.objects.create_user("clerk", password="a-long-test-password", is_staff=True))
    assert client.get("/admin/shop/pendingcheckout/").status_code == 403
    assert PendingCheckout.objects.filter(pk=pending.pk).exists()


def test_confirmation_emails_are_listed_read_only_with_those_given_up_apart(
    admin_client, client, django_user_model, db
):
    from shop.models import OrderEmail

    common = {"name": "Ada", "email": "ada@example.com", "total_cents": 100}
    OrderEmail.objects.create(number="L00000001", attempts=12, last_error="SMTP down", **common)
    waiting = OrderEmail.objects.create(number="L00000002", attempts=1, **common)

    given_up = admin_client.get("/admin/shop/orderemail/?state=given_up").content.decode()
    assert "L00000001" in given_up and "L00000002" not in given_up
    assert "L00000002" in admin_client.get("/admin/shop/orderemail/?state=waiting").content.decode()
    assert admin_client.get("/admin/shop/orderemail/add/").status_code == 403
    deleted = admin_client.post(f"/admin/shop/orderemail/{waiting.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    client.force_login(django_user_model.objects.create_user("clerk", password="a-long-test-password", is_staff=True))
    assert client.get("/admin/shop/orderemail/").status_code == 403
    assert OrderEmail.objects.count() == 2


def test_staff_who_may_only_look_cannot_restock_or_delete(viewer, products):
    restock = run_action(viewer, "restock", products, apply="1", quantity="10")
    delete = run_action(viewer, "soft_delete", products)
    inactive = run_action(viewer, "mark_inactive", products)

    assert (restock.status_code, delete.status_code, inactive.status_code) == (403, 403, 403)
    assert dict(Product.objects.values_list("slug", "stock")) == {"rod-a": 0, "rod-b": 3, "rod-c": 50}
    assert not Product.objects.filter(is_active=False).exists()
    assert not Product.objects.filter(deleted_at__isnull=False).exists()


def test_a_product_leaves_the_shop_by_soft_delete_never_deleted(admin_client, products):
    """Its row is the stock of record: deleted, its units left with no STOCK event (the inventory
    view kept them for good) and shoppers' basket lines vanished."""
    assert admin_client.get(f"{CHANGELIST}{products[0].pk}/delete/").status_code == 403
    assert 'value="delete_selected"' not in admin_client.get(CHANGELIST).content.decode()
    assert Product.objects.count() == 3


def test_the_product_actions_are_in_each_product_s_history_with_who_ran_them(admin_client, admin_user, products):
    """A change on the product's page is in its history; an action's was in none, so nobody
    could tell who took a product off sale, deleted it or added 10,000 units to its stock."""
    run_action(admin_client, "restock", products[:1], apply="1", quantity="10")
    run_action(admin_client, "mark_inactive", products[:1])
    run_action(admin_client, "soft_delete", products[:1])
    run_action(admin_client, "restore", products[:1])
    run_action(admin_client, "mark_active", products[:1])

    history = admin_client.get(f"{CHANGELIST}{products[0].pk}/history/").context["action_list"]

    assert [(entry.user, entry.get_change_message()) for entry in history] == [
        (admin_user, "Restocked: 10 added to its stock."),
        (admin_user, "Marked inactive (taken off sale)."),
        (admin_user, "Soft deleted."),
        (admin_user, "Restored (inactive)."),
        (admin_user, "Marked active (on sale)."),
    ]
    assert not admin_client.get(f"{CHANGELIST}{products[1].pk}/history/").context["action_list"]


def test_a_price_is_typed_in_dollars_and_kept_in_cents(admin_client, make_product):
    """A field of bare cents took "149" for $1.49: the product sold at a hundredth of its price."""
    from tests.shop.test_stock import change_form_data

    rod = make_product("rod-d", price_cents=4999)
    page = admin_client.get(f"{CHANGELIST}{rod.pk}/change/").content.decode()
    assert 'name="price_cents" value="49.99"' in page and 'step="0.01"' in page

    for typed, cents in (("149", 14900), ("$1,299.50", 129950), ("0.05", 5)):
        saved = admin_client.post(f"{CHANGELIST}{rod.pk}/change/", change_form_data(rod, price_cents=typed))
        assert saved.status_code == 302, typed
        rod.refresh_from_db()
        assert rod.price_cents == cents, typed

    for typed in ("149.999", "0", "-5", "14 99", "1e3"):
        refused = admin_client.post(f"{CHANGELIST}{rod.pk}/change/", change_form_data(rod, price_cents=typed))
        assert refused.status_code == 200 and "price_cents" in refused.context["adminform"].form.errors, typed
        assert Product.objects.get(pk=rod.pk).price_cents == 5, typed


def test_a_price_posted_as_shown_is_no_change(admin_client, make_product):
    """Saving a form that shows the price as it is changes no price: a product whose open sale
    keeps its price (shop.product_address) can still have its title changed."""
    from shop.admin import ProductAdminForm

    rod = make_product("rod-e", price_cents=14999)
    form_class = admin_client.get(f"{CHANGELIST}{rod.pk}/change/").context["adminform"].form.__class__
    assert issubclass(form_class, ProductAdminForm)
    field = form_class.base_fields["price_cents"]
    assert not field.has_changed(14999, "149.99") and not field.has_changed(14999, "149.990")
    assert field.has_changed(14999, "149.98") and field.has_changed(14999, "1.4999") and field.has_changed(14999, "x")


def test_a_new_product_s_price_is_typed_in_dollars(admin_client, rods):
    response = admin_client.post(
        f"{CHANGELIST}add/",
        {"title": "Pike Lure", "slug": "pike-lure", "category": rods.pk, "price_cents": "12.50", "stock": 3},
    )

    assert response.status_code == 302
    assert Product.objects.get(slug="pike-lure").price_cents == 1250


def test_a_comma_is_taken_only_between_thousands_never_as_the_cents_point(admin_client, make_product):
    """Cents typed after a comma ("1,49", as much of the world writes them) were read as $149.00,
    a hundred times the price, and "1,2,3" as $123.00: a comma is a thousands separator only
    where it stands between groups of three figures."""
    from tests.shop.test_stock import change_form_data

    rod = make_product("rod-f", price_cents=4999)
    for typed in ("1,49", "1,2,3", "4,99", "14,99.00", "1,4999", ",149", "149,", "1,,499"):
        refused = admin_client.post(f"{CHANGELIST}{rod.pk}/change/", change_form_data(rod, price_cents=typed))
        assert refused.status_code == 200, typed
        errors = refused.context["adminform"].form.errors["price_cents"]
        assert "1,499.00" in " ".join(errors), (typed, errors)
        assert Product.objects.get(pk=rod.pk).price_cents == 4999, typed

    for typed, cents in (("1,499", 149900), ("$12,345,678.90", 1234567890), ("999.5", 99950)):
        saved = admin_client.post(f"{CHANGELIST}{rod.pk}/change/", change_form_data(rod, price_cents=typed))
        assert saved.status_code == 302, typed
        rod.refresh_from_db()
        assert rod.price_cents == cents, typed
