"""Stock as the merchant changes it: never below what holds keep (the admin's form and change
list name the field and save nothing; load_demo --reset-stock keeps the held units and says
so), and every change logged as a STOCK event whose deltas add up to the change on hand."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from django.core.management import call_command
from django.db import transaction

from events.models import Event
from shop.models import Product
from shop.stock import StockBelowHeld, product_stock_set, products_restock

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "events/schema/envelope.schema.json").read_text())
CHANGELIST = "/admin/shop/product/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _every_event_fits_the_envelope(db):
    yield
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in Event.objects.all():
        validator.validate(event.envelope())


@pytest.fixture
def held_rod(make_product) -> Product:
    """10 on hand, 6 of them held for a sale (as the legacy API's hold sets it)."""
    product = make_product("muskie-casting-rod", title="Muskie Casting Rod", stock=10)
    Product.objects.filter(pk=product.pk).update(held=6)
    product.refresh_from_db()
    return product


def stock_events(slug: str = "muskie-casting-rod") -> list[dict]:
    return [e.data for e in Event.objects.filter(type="STOCK", data__product=slug).order_by("position")]


def change_form_data(product: Product, **changes) -> dict:
    data = {
        "title": product.title,
        "slug": product.slug,
        "category": product.category_id,
        "price_cents": f"{product.price_cents // 100}.{product.price_cents % 100:02d}",  # typed in dollars
        "stock": product.stock,
        "is_active": "on",
        "description": product.description,
    }
    return {**data, **changes}


def changelist_data(*rows: tuple[Product, int]) -> dict:
    data = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": str(len(rows)), "_save": "Save"}
    for index, (product, stock) in enumerate(rows):
        data[f"form-{index}-id"] = str(product.pk)
        data[f"form-{index}-stock"] = str(stock)
    return data


def test_the_change_form_refuses_stock_below_held_on_the_field_and_saves_nothing(admin_client, held_rod):
    response = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=5, title="Renamed")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["stock"] == [
        "At least 6: 6 units are held for a sale in the stock of record."
    ]
    held_rod.refresh_from_db()
    assert (held_rod.stock, held_rod.held, held_rod.title) == (10, 6, "Muskie Casting Rod")
    assert Event.objects.count() == 0


def test_the_change_form_sets_stock_down_to_held_and_logs_the_change(admin_client, held_rod):
    response = admin_client.post(f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=6))

    assert response.status_code == 302
    held_rod.refresh_from_db()
    assert (held_rod.stock, held_rod.held) == (6, 6)
    (event,) = Event.objects.all()
    assert (event.source, event.type, event.subtype, event.status) == ("shop.merchant", "STOCK", "PRODUCT", "CHANGED")
    assert event.data == {
        "product": "muskie-casting-rod",
        **{"on_hand": 6, "held": 6, "available": 0, "delta": -4, "held_delta": 0, "reason": "adjusted"},
    }


def test_a_change_form_without_a_stock_change_leaves_stock_and_held_as_orders_left_them(admin_client, held_rod):
    page = admin_client.get(f"{CHANGELIST}{held_rod.pk}/change/")
    assert page.status_code == 200
    # Between the page and its save, an order draws 2 units from the sale's hold.
    Product.objects.filter(pk=held_rod.pk).update(stock=8, held=4)

    response = admin_client.post(f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=8, title="New"))

    assert response.status_code == 302
    held_rod.refresh_from_db()
    assert (held_rod.stock, held_rod.held, held_rod.title) == (8, 4, "New")
    assert Event.objects.count() == 0


def test_the_change_list_refuses_stock_below_held_and_saves_no_row(admin_client, held_rod, make_product):
    other = make_product("spinning-reel", title="Spinning Reel", stock=3)

    response = admin_client.post(CHANGELIST, changelist_data((other, 30), (held_rod, 2)))

    assert response.status_code == 200
    formset = response.context["cl"].formset
    assert formset.errors[1]["stock"] == ["At least 6: 6 units are held for a sale in the stock of record."]
    assert "At least 6: 6 units are held" in response.content.decode()
    assert Product.objects.get(pk=other.pk).stock == 3
    assert Product.objects.get(pk=held_rod.pk).stock == 10
    assert Event.objects.count() == 0


def test_the_change_list_saves_stock_at_or_above_held_and_logs_each(admin_client, held_rod, make_product):
    other = make_product("spinning-reel", title="Spinning Reel", stock=3)

    response = admin_client.post(CHANGELIST, changelist_data((other, 30), (held_rod, 7)))

    assert response.status_code == 302
    assert Product.objects.get(pk=held_rod.pk).stock == 7
    assert [e["delta"] for e in stock_events()] == [-3]
    assert [(e["on_hand"], e["delta"]) for e in stock_events("spinning-reel")] == [(30, 27)]


def test_the_restock_action_logs_each_product_it_restocks(admin_client, held_rod, make_product):
    other = make_product("spinning-reel", title="Spinning Reel", stock=3)

    data = {"action": "restock", "_selected_action": [held_rod.pk, other.pk], "apply": "1", "quantity": 5}
    response = admin_client.post(CHANGELIST, data)

    assert response.status_code == 302
    assert [(e["on_hand"], e["held"], e["delta"], e["reason"]) for e in stock_events()] == [(15, 6, 5, "restock")]
    assert [(e["on_hand"], e["delta"]) for e in stock_events("spinning-reel")] == [(8, 5)]


def test_stock_set_below_held_raises_and_writes_nothing(held_rod):
    with pytest.raises(StockBelowHeld) as refused:
        product_stock_set(product_id=held_rod.pk, stock=5)

    assert refused.value.held == 6
    assert Product.objects.get(pk=held_rod.pk).stock == 10
    assert Event.objects.count() == 0


def test_a_rolled_back_stock_change_logs_nothing(held_rod):
    with pytest.raises(RuntimeError), transaction.atomic():
        products_restock(product_ids=[held_rod.pk], quantity=4)
        raise RuntimeError("the caller's transaction fails")

    assert Product.objects.get(pk=held_rod.pk).stock == 10
    assert Event.objects.count() == 0


def test_the_merchants_deltas_add_up_to_the_change_on_hand(held_rod):
    product_stock_set(product_id=held_rod.pk, stock=20)
    products_restock(product_ids=[held_rod.pk], quantity=7)
    product_stock_set(product_id=held_rod.pk, stock=6)
    product_stock_set(product_id=held_rod.pk, stock=6)

    assert sum(e["delta"] for e in stock_events()) == 6 - 10
    assert len(stock_events()) == 3


def load_demo(*args: str) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def test_load_demo_reset_stock_keeps_stock_at_least_held_and_says_so(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    load_demo()
    reel = Product.objects.get(slug="spinning-reel")  # the demo has 60
    Product.objects.filter(pk=reel.pk).update(stock=80, held=70)
    Product.objects.filter(slug="muskie-casting-rod").update(stock=3)

    output = load_demo("--reset-stock")

    reel.refresh_from_db()
    assert (reel.stock, reel.held) == (70, 70)
    assert "spinning-reel: stock kept at 70, the units held for a sale, not the demo's 60." in output
    assert Product.objects.get(slug="muskie-casting-rod").stock == 25
    assert [(e["on_hand"], e["delta"], e["reason"]) for e in stock_events("spinning-reel")] == [(70, -10, "adjusted")]
    assert [e["delta"] for e in stock_events("muskie-casting-rod")] == [22]
    assert "muskie-casting-rod: stock kept" not in output


def test_a_stock_figure_typed_over_one_that_orders_moved_since_is_refused(admin_client, held_rod):
    """The page showed 10; two units sold meanwhile (8 now); the merchant typed 11 for one
    that arrived: saving 11 would put the two sold units back on sale."""
    page = admin_client.get(f"{CHANGELIST}{held_rod.pk}/change/")
    assert 'name="initial-stock" value="10"' in page.content.decode()
    Product.objects.filter(pk=held_rod.pk).update(stock=8)

    stale = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=11, **{"initial-stock": "10"})
    )

    assert stale.status_code == 200
    assert stale.context["adminform"].form.errors["stock"] == [
        "The stock changed from 10 to 8 since you opened this page (orders or a delivery): nothing was saved. "
        "Enter the new figure counted from 8."
    ]
    assert Product.objects.get(pk=held_rod.pk).stock == 8
    # Another field saved from the old page leaves the stock as orders left it.
    retitled = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/",
        change_form_data(held_rod, stock=10, title="Muskie Rod", **{"initial-stock": "10"}),
    )
    assert retitled.status_code == 302
    assert Product.objects.get(pk=held_rod.pk).stock == 8


def test_the_refused_stock_page_counts_from_the_figure_now(admin_client, held_rod):
    Product.objects.filter(pk=held_rod.pk).update(stock=8)
    refused = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=11, **{"initial-stock": "10"})
    )
    assert 'name="initial-stock" value="8"' in refused.content.decode()

    again = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/", change_form_data(held_rod, stock=9, **{"initial-stock": "8"})
    )
    assert again.status_code == 302
    assert Product.objects.get(pk=held_rod.pk).stock == 9


def test_a_product_page_loaded_before_another_merchant_took_it_off_sale_cannot_put_it_back(admin_client, held_rod):
    page = admin_client.get(f"{CHANGELIST}{held_rod.pk}/change/")
    version = page.context["adminform"].form["loaded_version"].value()
    Product.objects.filter(pk=held_rod.pk).update(is_active=False, price_cents=3000)

    stale = admin_client.post(
        f"{CHANGELIST}{held_rod.pk}/change/",
        change_form_data(held_rod, description="Now with a cork grip.", loaded_version=version),
    )

    assert stale.status_code == 200
    assert "was changed since you opened this page" in " ".join(stale.context["adminform"].form.non_field_errors())
    held_rod.refresh_from_db()
    assert (held_rod.is_active, held_rod.price_cents) == (False, 3000)


def test_a_product_list_row_left_alone_does_not_write_back_its_featured_box(admin_client, held_rod, make_product):
    other = make_product("pike-rod", title="Pike Rod", stock=5)
    Product.objects.filter(pk=held_rod.pk).update(is_featured=True)  # another merchant, meanwhile
    data = changelist_data((other, 5), (held_rod, 10))
    data.update({"initial-form-0-stock": "5", "initial-form-1-stock": "10"})
    data.update(
        {"form-0-is_featured": "on", "initial-form-0-is_featured": "False", "initial-form-1-is_featured": "False"}
    )

    admin_client.post(CHANGELIST, data)

    assert Product.objects.get(pk=other.pk).is_featured
    assert Product.objects.get(pk=held_rod.pk).is_featured, "the row left alone kept the other merchant's change"
