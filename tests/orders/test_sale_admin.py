"""The merchant's sale allocation page against the real legacy API: opening, resizing and
closing a sale move its hold, and what the stock of record refuses is a message on the field
with nothing saved and nothing held."""

from __future__ import annotations

import io

import pytest

from orders import sales
from orders.models import HotOrder, OrderStatus, SaleAllocation, SaleState
from orders.sales import sale_open
from shop.models import Product
from tests.orders.conftest import order_accept_as_buyer
from tests.orders.sale_support import hold_quantity, legacy_serve, stock
from tests.shop.test_stock import change_form_data

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = "/admin/orders/saleallocation/add/"


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def change_url(allocation: SaleAllocation) -> str:
    return f"/admin/orders/saleallocation/{allocation.pk}/change/"


def form(product, **fields) -> dict:
    data = {"product": product.pk, "is_hot": "on", "allocated": 50, "per_order_limit": 2}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def field_errors(response, field: str) -> list[str]:
    return list(response.context["adminform"].form.errors.get(field, []))


def test_adding_a_hot_allocation_opens_the_sale_with_its_hold(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=50))

    assert response.status_code == 302
    allocation = SaleAllocation.objects.get()
    assert (allocation.state, allocation.allocated) == (SaleState.OPEN, 50)
    assert hold_quantity(allocation.hold_reference) == 50 and stock().available == 50


def test_the_route_box_s_help_names_the_command_as_code_not_markdown(admin_client, product):
    html = admin_client.get(ADD_URL).content.decode()

    assert "(as <code>manage.py sale open --route</code> does)" in html and "`sale open --route`" not in html


def test_an_allocation_above_available_stock_is_a_message_on_allocated(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=101))

    assert response.status_code == 200
    assert field_errors(response, "allocated") == ["Only 100 available in the stock of record: allocate at most that."]
    assert not SaleAllocation.objects.exists()
    assert stock().held == 0


def test_a_per_order_limit_of_zero_is_a_message_on_the_field(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, per_order_limit=0))

    assert response.status_code == 200
    assert field_errors(response, "per_order_limit") == ["At least 1 unit per order."]
    assert not SaleAllocation.objects.exists() and stock().held == 0


def test_raising_the_allocation_grows_the_hold_and_edits_keep_reservations(admin_client, product):
    allocation = sale_open(product=product, units=20)
    order_accept_as_buyer(quantity=1)

    response = admin_client.post(change_url(allocation), form(product, allocated=30, per_order_limit=3))

    assert response.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.allocated, allocation.per_order_limit, allocation.reserved) == (30, 3, 1)
    assert hold_quantity(allocation.hold_reference) == 30


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"allocated": 1_000_001},
            "allocated",
            "At most 1,000,000 units: the most the stock of record holds for a sale.",
        ),
        (
            {"allocated": 2000, "per_order_limit": 1001},
            "per_order_limit",
            "At most 1000 per order: the most the order backend takes in one order.",
        ),
    ],
)
def test_an_open_sale_grown_past_what_the_order_backend_takes_is_a_message_on_the_field(
    admin_client, product, change, field, message
):
    """A hold past the stock of record's largest was a 500; a limit per order past the order
    backend's largest line gave buyers a 202 the backend then refused."""
    Product.objects.filter(pk=product.pk).update(stock=2_000_000)
    product.refresh_from_db()
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(change_url(allocation), form(product, **change))

    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    allocation.refresh_from_db()
    assert allocation.allocated == 20 and hold_quantity(allocation.hold_reference) == 20


def test_the_allocation_cannot_go_below_what_is_reserved_or_sold(admin_client, product):
    allocation = sale_open(product=product, units=20)
    order_accept_as_buyer(quantity=1)
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=5)

    response = admin_client.post(change_url(allocation), form(product, allocated=4))

    assert response.status_code == 200
    assert field_errors(response, "allocated") == ["At least 6: 6 are already reserved or sold."]
    assert hold_quantity(allocation.hold_reference) == 20


def test_switching_the_hot_path_off_closes_the_sale(admin_client, product):
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(change_url(allocation), form(product, is_hot=None, allocated=20))

    assert response.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot) == (SaleState.CLOSED, False)
    assert (stock().held, stock().available) == (0, 100)


def test_the_reconcile_action_reports_each_sale(admin_client, product):
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(
        "/admin/orders/saleallocation/", {"action": "reconcile", "_selected_action": [allocation.pk]}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == ["Muskie Casting Rod: owed 20, hold 20, drift +0: in step"]


def sale_with_route(product) -> SaleAllocation:
    from django.core.management import call_command

    from tests.edge.conftest import ensure_origins

    ensure_origins()
    call_command("sale", "open", product.slug, "--units", "20", "--route", stdout=io.StringIO())
    return SaleAllocation.objects.get(product=product)


def route_enabled(name: str) -> bool:
    from edge.models import Route

    return Route.objects.get(name=name).enabled


def test_switching_the_hot_path_off_also_switches_the_sale_s_route_off(admin_client, product):
    from edge.models import RouteAudit

    allocation = sale_with_route(product)
    assert route_enabled("muskie-casting-rod-sale")

    response = admin_client.post(change_url(allocation), form(product, is_hot=None, allocated=20))

    assert response.status_code == 302
    shown = [str(m) for m in admin_client.get("/admin/orders/saleallocation/").context["messages"]]
    assert (
        "Muskie Casting Rod: Route muskie-casting-rod-sale switched off: /shop/rods/muskie-casting-rod/ goes to "
        "the storefront again." in shown
    ), shown
    # The product's pages go back to the storefront, which sells it again: no 404 from the hot path.
    assert not route_enabled("muskie-casting-rod-sale")
    assert RouteAudit.objects.filter(action=RouteAudit.Action.DISABLE, actor="sale").count() == 1


def test_the_action_turning_the_hot_path_off_closes_the_sale_and_its_route_and_says_so(admin_client, product):
    allocation = sale_with_route(product)

    response = admin_client.post(
        "/admin/orders/saleallocation/", {"action": "make_not_hot", "_selected_action": [allocation.pk]}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [
        "Muskie Casting Rod: sale closed. Route muskie-casting-rod-sale switched off: "
        "/shop/rods/muskie-casting-rod/ goes to the storefront again."
    ]
    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSED and not route_enabled("muskie-casting-rod-sale")


def test_a_sale_under_way_cannot_be_deleted_so_its_hold_is_never_stranded(admin_client, product):
    allocation = sale_with_route(product)

    opened = admin_client.get(f"/admin/orders/saleallocation/{allocation.pk}/delete/", follow=True)
    assert opened.redirect_chain == [(f"/admin/orders/saleallocation/{allocation.pk}/change/", 302)]
    assert "Muskie Casting Rod: the sale is open; close it first, then delete it." in _shown(opened)
    assert (
        admin_client.post(f"/admin/orders/saleallocation/{allocation.pk}/delete/", {"post": "yes"}).status_code == 302
    )
    response = admin_client.post(
        "/admin/orders/saleallocation/",
        {"action": "delete_selected", "_selected_action": [allocation.pk], "post": "yes"},
    )

    assert response.status_code == 200
    assert "the sale is open; close it first" in response.content.decode()
    assert SaleAllocation.objects.filter(pk=allocation.pk, state=SaleState.OPEN).exists()
    assert hold_quantity(allocation.hold_reference) == 20 and route_enabled("muskie-casting-rod-sale")


def test_an_existing_sale_keeps_its_product(admin_client, product, category):
    from shop.models import Product

    other = Product.objects.create(category=category, title="Bass Rod", slug="bass-rod", price_cents=4999, stock=10)
    allocation = sale_open(product=product, units=20)

    response = admin_client.post(change_url(allocation), form(other, allocated=3))

    assert response.status_code == 302
    assert list(SaleAllocation.objects.values_list("product__slug", "allocated")) == [("muskie-casting-rod", 3)]
    assert hold_quantity(allocation.hold_reference) == 3 and stock("bass-rod").held == 0


def test_a_closed_sale_reopens_with_fewer_units_than_it_sold_the_last_time(admin_client, product):
    allocation = sale_open(product=product, units=20)
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=8)
    sales_close(allocation)

    response = admin_client.post(change_url(allocation), form(product, allocated=3))

    assert response.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.state, allocation.allocated, allocation.sold) == (SaleState.OPEN, 3, 0)


def sales_close(allocation: SaleAllocation) -> None:
    from orders.sales import sale_close

    sale_close(allocation=allocation)


def test_a_limit_per_order_above_the_sale_s_units_is_a_message_on_the_field(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=5, per_order_limit=6))

    assert response.status_code == 200
    assert field_errors(response, "per_order_limit") == ["At most 5 per order: the sale has 5 units."]
    assert not SaleAllocation.objects.exists() and stock().held == 0


@pytest.mark.parametrize(
    ("limit", "message"), [(0, "At least 1 unit per order."), (500, "At most 20 per order: the sale has 20 units.")]
)
def test_the_change_list_s_edit_of_the_limit_is_checked_as_the_form_s(admin_client, product, limit, message):
    allocation = sale_open(product=product, units=20)
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(allocation.pk),
        "form-0-per_order_limit": str(limit),
        "_save": "Save",
    }

    response = admin_client.post("/admin/orders/saleallocation/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    allocation.refresh_from_db()
    assert allocation.per_order_limit == 2


def warnings_of(response) -> list[str]:
    from django.contrib import messages

    return [str(m) for m in response.context["messages"] if m.level == messages.WARNING]


def test_a_draft_above_the_stock_is_saved_with_a_warning_naming_the_stock_and_the_units(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, is_hot=None, allocated=120), follow=True)

    assert response.status_code == 200
    assert warnings_of(response) == [
        "Muskie Casting Rod: the sale asks for 120 units, and the stock of record has 100 on hand. "
        "It is saved as a draft; opening it is refused until that much stock is available."
    ]
    allocation = SaleAllocation.objects.get()
    assert (allocation.state, allocation.allocated) == (SaleState.DRAFT, 120) and stock().held == 0
    # Opening it is refused as before, with nothing held.
    refused = admin_client.post(change_url(allocation), form(product, allocated=120))
    assert field_errors(refused, "allocated") == ["Only 100 available in the stock of record: allocate at most that."]
    assert stock().held == 0


def test_a_draft_within_the_stock_is_saved_with_no_warning(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, is_hot=None, allocated=100), follow=True)

    assert response.status_code == 200 and warnings_of(response) == []
    assert SaleAllocation.objects.get().state == SaleState.DRAFT


def test_a_draft_above_what_other_holds_leave_says_what_they_hold(admin_client, product):
    import legacy_client

    legacy_client.hold_create(reference="other-channel-1", product=product.slug, quantity=30)
    draft = SaleAllocation.objects.create(product=product, allocated=50, per_order_limit=2)

    response = admin_client.post(change_url(draft), form(product, is_hot=None, allocated=80), follow=True)

    assert warnings_of(response) == [
        "Muskie Casting Rod: the sale asks for 80 units, and the stock of record has 100 on hand, "
        "30 of them held (70 available). It is saved as a draft; opening it is refused until that much "
        "stock is available."
    ]


def test_a_closed_sale_saved_with_fewer_units_than_it_last_sold_is_refused_naming_the_field(admin_client, product):
    """A closed sale's row keeps its last opening's figures until the next opening counts afresh:
    fewer units than it sold is refused on the form, not a 500 from the no-oversell check."""
    from orders import sales

    allocation = sale_open(product=product, units=20)
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=8)
    sales.sale_close(allocation=allocation)

    response = admin_client.post(change_url(allocation), {"product": product.pk, "allocated": 3, "per_order_limit": 2})

    assert response.status_code == 200
    assert "The last sale sold 8" in " ".join(field_errors(response, "allocated"))
    allocation.refresh_from_db()
    assert (allocation.state, allocation.allocated, allocation.sold) == (SaleState.CLOSED, 8, 8)


PRODUCT_URL = "/admin/shop/product/{}/change/"
CATEGORY_URL = "/admin/shop/category/{}/change/"


def test_a_product_s_address_cannot_change_while_its_sale_is_open_or_its_orders_are_in_flight(admin_client, product):
    """The sale's route and every buyer's status URL hold the product's category and slug: a
    rename during the sale sent its page back to the storefront and turned status URLs to 404."""
    from shop.models import Category

    reels = Category.objects.create(name="Reels", slug="reels")
    allocation = sale_open(product=product, units=20)

    renamed = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, slug="muskie-rod"))
    assert renamed.status_code == 200
    assert field_errors(renamed, "slug") == [
        "Muskie Casting Rod's sale is open: the sale's route and its buyers' order links use this address. "
        "Change it once the sale is closed and its orders are settled."
    ]
    moved = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, category=reels.pk))
    assert moved.status_code == 200 and field_errors(moved, "category")
    category = admin_client.post(
        CATEGORY_URL.format(product.category_id), {"name": "Rods", "slug": "fishing-rods", "position": 0}
    )
    assert category.status_code == 200 and field_errors(category, "slug")
    retitled = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, title="Muskie Rod XL"))
    assert retitled.status_code == 302, "the rest of the product may change"
    product.refresh_from_db()
    assert (product.slug, product.category.slug) == ("muskie-casting-rod", "rods")

    order = order_accept_as_buyer(quantity=1)
    sales.sale_close(allocation=allocation)
    still = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, slug="muskie-rod"))
    assert field_errors(still, "slug") == [
        "Muskie Rod XL has orders being placed: their buyers' order links use this address. "
        "Change it once they are settled."
    ]

    HotOrder.objects.filter(pk=order.pk).update(status=OrderStatus.FAILED)
    done = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, slug="muskie-rod"))
    assert done.status_code == 302
    assert Product.objects.get(pk=product.pk).slug == "muskie-rod"


def test_the_admin_warns_when_the_price_lowers_the_limit_per_order(admin_client, product):
    Product.objects.filter(pk=product.pk).update(price_cents=900_000_000)
    response = admin_client.post(ADD_URL, form(product, allocated=10, per_order_limit=5), follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Buyers may order at most 2 per order, not 5" in m for m in shown), shown


def loaded_version(response) -> str:
    value = response.context["adminform"].form["loaded_version"].value()
    assert value and f'name="loaded_version" value="{value}"' in response.content.decode()
    return value


def test_a_sale_page_loaded_before_the_sale_was_closed_elsewhere_cannot_reopen_it(admin_client, product):
    allocation = sale_open(product=product, units=20)
    page = admin_client.get(change_url(allocation))
    version = loaded_version(page)
    sales.sale_close(allocation=allocation)  # by the command, another merchant or the beat

    # The old page, saved with only the limit changed: its "hot" box is still ticked.
    stale = admin_client.post(
        change_url(allocation), form(product, allocated=20, per_order_limit=3, loaded_version=version)
    )

    assert stale.status_code == 200
    assert "was changed since you opened this page: nothing was saved" in " ".join(
        stale.context["adminform"].form.non_field_errors()
    )
    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot, allocation.per_order_limit) == (SaleState.CLOSED, False, 2)
    assert stock().held == 0

    fresh = admin_client.get(change_url(allocation))
    saved = admin_client.post(
        change_url(allocation),
        form(product, is_hot=None, allocated=20, per_order_limit=3, loaded_version=loaded_version(fresh)),
    )
    assert saved.status_code == 302
    assert SaleAllocation.objects.get(pk=allocation.pk).per_order_limit == 3


def test_a_sale_page_loaded_before_a_resize_cannot_undo_it(admin_client, product):
    allocation = sale_open(product=product, units=8)
    version = loaded_version(admin_client.get(change_url(allocation)))
    sales.sale_resize(allocation=allocation, units=12)

    stale = admin_client.post(
        change_url(allocation), form(product, allocated=8, per_order_limit=3, loaded_version=version)
    )

    assert stale.status_code == 200
    assert SaleAllocation.objects.get(pk=allocation.pk).allocated == 12
    assert hold_quantity(allocation.hold_reference) == 12


def test_a_draft_s_limit_per_order_cannot_be_above_its_units(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, is_hot=None, allocated=5, per_order_limit=9))
    assert response.status_code == 200
    assert field_errors(response, "per_order_limit") == ["At most 5 per order: the sale has 5 units."]
    assert not SaleAllocation.objects.exists()


def test_sale_open_with_its_route_follows_the_product_to_its_new_address_and_close_switches_it_off(
    admin_client, product
):
    from django.core.management import call_command

    from edge.models import Route
    from shop.models import Category

    allocation = sale_with_route(product)
    sales.sale_close(allocation=allocation)
    reels = Category.objects.create(name="Reels", slug="reels")
    Product.objects.filter(pk=product.pk).update(category=reels)  # allowed once the sale is over

    call_command("sale", "open", product.slug, "--units", "5", "--route", stdout=io.StringIO())

    route = Route.objects.get(name="muskie-casting-rod-sale")
    assert (route.pattern, route.enabled) == ("/shop/reels/muskie-casting-rod/*", True)
    call_command("sale", "close", product.slug, stdout=io.StringIO())
    assert not route_enabled("muskie-casting-rod-sale")

    # A route left at the old address by an earlier release is switched off with its sale too.
    call_command("sale", "open", product.slug, "--units", "5", "--route", stdout=io.StringIO())
    Route.objects.filter(name="muskie-casting-rod-sale").update(pattern="/shop/rods/muskie-casting-rod/*")
    call_command("sale", "close", product.slug, stdout=io.StringIO())
    assert not route_enabled("muskie-casting-rod-sale")


def test_a_product_cannot_be_taken_off_sale_while_its_sale_is_open_or_its_orders_are_placed(admin_client, product):
    allocation = sale_open(product=product, units=20)

    for action in ("mark_inactive", "soft_delete"):
        response = admin_client.post(
            "/admin/shop/product/", {"action": action, "_selected_action": [product.pk]}, follow=True
        )
        shown = [str(m) for m in response.context["messages"]]
        assert shown[0].startswith("Left on sale: Muskie Casting Rod's sale is open: close the sale first"), shown
        assert Product.objects.filter(pk=product.pk, is_active=True, deleted_at__isnull=True).exists()
    unticked = {k: v for k, v in change_form_data(product).items() if k != "is_active"}
    refused = admin_client.post(PRODUCT_URL.format(product.pk), unticked)
    assert refused.status_code == 200 and field_errors(refused, "is_active")

    order = order_accept_as_buyer(quantity=1)
    sales.sale_close(allocation=allocation)
    response = admin_client.post(
        "/admin/shop/product/", {"action": "mark_inactive", "_selected_action": [product.pk]}, follow=True
    )
    assert "has orders being placed" in str(list(response.context["messages"])[0])
    HotOrder.objects.filter(pk=order.pk).update(status=OrderStatus.COMPLETE)
    admin_client.post("/admin/shop/product/", {"action": "mark_inactive", "_selected_action": [product.pk]})
    assert not Product.objects.get(pk=product.pk).is_active


def test_a_sale_list_loaded_before_a_limit_changed_does_not_write_the_old_limit_back(admin_client, product):
    allocation = sale_open(product=product, units=20, per_order_limit=5)
    page = admin_client.get("/admin/orders/saleallocation/").content.decode()
    assert 'name="initial-form-0-per_order_limit" value="5"' in page
    SaleAllocation.objects.filter(pk=allocation.pk).update(per_order_limit=1)  # on the sale's page, meanwhile

    admin_client.post(
        "/admin/orders/saleallocation/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(allocation.pk),
            "form-0-per_order_limit": "5",
            "initial-form-0-per_order_limit": "5",
            "_save": "Save",
        },
    )

    assert SaleAllocation.objects.get(pk=allocation.pk).per_order_limit == 1


def test_a_product_s_price_stays_while_its_sale_is_open(admin_client, product):
    """The sale's page shows buyers the price, and their 202 charges the price of the moment:
    changed during the sale, a buyer whose page was loaded before would pay one never shown."""
    allocation = sale_open(product=product, units=20)

    refused = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, price_cents="199.99"))
    assert refused.status_code == 200
    assert field_errors(refused, "price_cents") == [
        "Muskie Casting Rod's sale is open: its page shows buyers this price, and a 202 charges it. "
        "Change it once the sale is closed."
    ]
    assert Product.objects.get(pk=product.pk).price_cents == 14999

    order_accept_as_buyer(quantity=1)
    sales.sale_close(allocation=allocation)  # its order still being placed, at the price it was accepted at
    changed = admin_client.post(PRODUCT_URL.format(product.pk), change_form_data(product, price_cents="199.99"))
    assert changed.status_code == 302
    assert Product.objects.get(pk=product.pk).price_cents == 19999


def _shown(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_sale_opened_in_the_admin_sends_its_pages_to_the_hot_path(admin_client, product):
    """As `sale open --route`. Before, the admin opened the sale and held its units, the shop's
    card said "Flash sale", and the product's page was the storefront's, which cannot sell them."""
    from edge.models import RouteAudit
    from tests.edge.conftest import ensure_origins

    ensure_origins()
    response = admin_client.post(ADD_URL, form(product, allocated=20, route="on"), follow=True)

    assert SaleAllocation.objects.get().state == SaleState.OPEN
    assert "Muskie Casting Rod: its pages go to the hot path (route muskie-casting-rod-sale)." in _shown(response)
    assert route_enabled("muskie-casting-rod-sale")
    # Audited as the merchant's change.
    assert set(RouteAudit.objects.values_list("actor", flat=True)) == {"admin:admin"}


def test_a_merchant_who_may_not_change_routes_opens_the_sale_and_is_told_its_pages_stay(
    client, product, django_user_model
):
    from django.contrib.auth.models import Permission

    from edge.models import Route
    from tests.edge.conftest import ensure_origins

    ensure_origins()
    merchant = django_user_model.objects.create_user(
        "sales", "sales@example.com", "a-long-test-password", is_staff=True
    )
    merchant.user_permissions.set(
        Permission.objects.filter(content_type__app_label="orders", codename__endswith="saleallocation")
    )
    client.force_login(merchant)

    response = client.post(ADD_URL, form(product, allocated=20, route="on"), follow=True)

    assert SaleAllocation.objects.get().state == SaleState.OPEN
    assert (
        "Muskie Casting Rod: the sale is open, but its pages still go to the storefront: someone who may change the "
        "edge's routes must send /shop/rods/muskie-casting-rod/* to the hot path." in _shown(response)
    )
    assert not Route.objects.exists()


def test_a_sale_opened_without_its_route_says_where_its_pages_go(admin_client, product):
    response = admin_client.post(ADD_URL, form(product, allocated=20), follow=True)

    assert SaleAllocation.objects.get().state == SaleState.OPEN
    assert (
        "Muskie Casting Rod: the sale is open, but its pages still go to the storefront: a route must send "
        "/shop/rods/muskie-casting-rod/* to the hot path." in _shown(response)
    )


def test_a_staff_member_who_may_not_see_sales_is_refused_their_delete_page_and_told_nothing(
    client, product, django_user_model
):
    allocation = sale_open(product=product, units=20)
    client.force_login(django_user_model.objects.create_user("helper", "h@example.com", "a-long-pw-x1", is_staff=True))

    response = client.get(f"/admin/orders/saleallocation/{allocation.pk}/delete/")

    assert response.status_code == 403 and "Muskie" not in response.content.decode()


def test_a_refused_resize_shows_what_is_left_of_the_sale_not_of_the_refused_units(admin_client, product):
    """Before: 'Left: 480' beside 'Only 80 more available…', worked out from the refused figure."""
    import re

    allocation = sale_open(product=product, units=20)

    response = admin_client.post(change_url(allocation), form(product, allocated=500))

    assert response.status_code == 200 and field_errors(response, "allocated")
    left = re.search(r'field-left_now.*?<div class="readonly">(.*?)</div>', response.content.decode(), re.S)
    assert left and left.group(1).strip() == "20", left and left.group(1)


@pytest.mark.parametrize("allocated", [3, 30])
def test_a_closing_sale_asked_to_reopen_is_told_of_its_orders_in_flight_whatever_its_units(
    admin_client, product, allocated
):
    """Asked for fewer units than it had taken, it said "At least 12", and only once raised
    the real reason: its orders in flight."""
    allocation = sale_open(product=product, units=20)
    SaleAllocation.objects.filter(pk=allocation.pk).update(reserved=4, sold=8)
    sales.sale_close(allocation=allocation)
    assert SaleAllocation.objects.get(pk=allocation.pk).state == SaleState.CLOSING

    response = admin_client.post(change_url(allocation), form(product, allocated=allocated))

    assert response.status_code == 200
    assert field_errors(response, "allocated") == [
        "4 units of the last sale are still in orders in flight; open it again once they are placed."
    ]


def test_opening_and_closing_a_sale_by_its_actions_is_in_the_sale_s_history(admin_client, admin_user, product):
    allocation = SaleAllocation.objects.create(product=product, allocated=20, per_order_limit=2)

    for action in ("make_hot", "make_not_hot"):
        admin_client.post("/admin/orders/saleallocation/", {"action": action, "_selected_action": [allocation.pk]})

    assert SaleAllocation.objects.get(pk=allocation.pk).state == SaleState.CLOSED
    history = admin_client.get(f"/admin/orders/saleallocation/{allocation.pk}/history/").context["action_list"]
    assert [(entry.user, entry.get_change_message()) for entry in history] == [
        (admin_user, "Opened the sale: 20 units held."),
        (admin_user, "Closed the sale."),
    ]


def test_a_sale_whose_window_ended_is_switched_off_from_its_page_before_the_beat_closes_it(admin_client, product):
    """Its end is past and the beat has not closed it yet (every 15 s, or never while no worker
    runs): unticking "hot" closes it, rather than "The sale's end is already past."."""
    from datetime import timedelta

    from django.utils import timezone

    ends = timezone.now() + timedelta(hours=1)
    allocation = sale_open(product=product, units=20, ends_at=ends)
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=5))
    ended = SaleAllocation.objects.get(pk=allocation.pk).ends_at
    page = admin_client.get(change_url(allocation))

    response = admin_client.post(
        change_url(allocation),
        form(
            product,
            is_hot=None,
            allocated=20,
            ends_at_0=ended.strftime("%Y-%m-%d"),
            ends_at_1=ended.strftime("%H:%M:%S"),
            loaded_version=loaded_version(page),
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot) == (SaleState.CLOSED, False)
    assert stock().held == 0
