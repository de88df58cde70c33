"""Sales per minute and the tallies fold from the order events alone: a sale stays with the
supplier and category its event names when the catalogue moves the product later, so a rebuild
from the log equals the live view; an event written before its lines named them still folds,
under the product's current ones."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from legacy_api.events import order_placed_append
from readmodels.sales import TALLIES
from shop.models import Category, Supplier
from tests.readmodels.conftest import catch_up, place

pytestmark = pytest.mark.django_db(transaction=True)


def _rebuild_checked_and_swapped_in() -> None:
    """`events rebuild --check tallies` (exit 1 when the view differs), then the rebuild itself."""
    call_command("events", "rebuild", "--check", "tallies", stdout=StringIO())
    call_command("events", "rebuild", "tallies", stdout=StringIO())


def test_tallies_rebuilt_from_the_log_equal_the_live_view_after_a_product_changes_supplier(catalogue):
    place("spinning-reel", 2)
    catch_up()
    reel = catalogue["spinning-reel"]
    reel.supplier = Supplier.objects.create(name="Other Reels Inc", email="o@example.com")
    reel.save()
    place("spinning-reel", 1)
    catch_up()
    live = TALLIES.state()

    _rebuild_checked_and_swapped_in()

    assert TALLIES.state() == live
    assert live["supplier|Lakeshore Reel Works"]["units"] == 2
    assert live["supplier|Other Reels Inc"]["units"] == 1


def test_tallies_rebuilt_from_the_log_equal_the_live_view_after_a_product_changes_category(catalogue):
    place("tourney-casting-rod", 3)
    catch_up()
    rod = catalogue["tourney-casting-rod"]
    rod.category = Category.objects.create(name="Travel Rods", slug="travel-rods")
    rod.save()
    live = TALLIES.state()

    _rebuild_checked_and_swapped_in()

    assert TALLIES.state() == live
    assert live["category|rods"]["units"] == 3
    assert "category|travel-rods" not in live


def test_an_order_event_written_before_lines_named_supplier_and_category_is_tallied_under_the_current_ones(
    catalogue,
):
    with transaction.atomic():
        order_placed_append(
            number="L00000001",
            reference="ref-before",
            lines=[{"product": "spinning-reel", "quantity": 2, "unit_price_cents": 2999}],
            total_cents=2 * 2999,
            hold=None,
        )
    reel = catalogue["spinning-reel"]
    reel.supplier = Supplier.objects.create(name="Other Reels Inc", email="o@example.com")
    reel.save()

    catch_up()

    tallies = TALLIES.state()
    assert tallies["supplier|Other Reels Inc"]["units"] == 2
    assert tallies["category|reels"]["units"] == 2
    assert "supplier|Lakeshore Reel Works" not in tallies


def test_an_order_of_two_products_is_one_order_a_minute_and_in_the_totals(catalogue):
    """The dashboard said 13 orders placed after 12: a checkout of a reel and waders counted
    one order for each product."""
    from legacy_api.services import LineRequest, order_place
    from readmodels.selectors import sales_per_minute, sales_totals

    order_place(
        reference="two-products",
        customer_name="Ann Angler",
        customer_email="ann@example.com",
        lines=[
            LineRequest(product="spinning-reel", quantity=1),
            LineRequest(product="tourney-casting-rod", quantity=2),
        ],
        card_number="4242424242424242",
    )
    place("spinning-reel", 1)
    catch_up()

    assert sales_totals()["orders"] == 2 and sales_totals()["units"] == 4
    assert sum(row["orders"] for row in sales_per_minute()) == 2
    call_command("events", "rebuild", "--check", "sales_per_minute", stdout=StringIO())
