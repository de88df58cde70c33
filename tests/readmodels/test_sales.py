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
