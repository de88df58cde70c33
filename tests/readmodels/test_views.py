"""The read models fed by the log: the inventory view equals the stock of record, sales per
minute and the tallies add up to the orders placed, and every view can be snapshotted, rebuilt
and checked against a rebuild."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.utils import timezone

from events.models import Event, Snapshot
from events.services import events_prune
from legacy_api.holds import hold_create
from legacy_api.models import Order, OrderLine
from readmodels.inventory import VIEW as INVENTORY
from readmodels.inventory import inventory_true_up
from readmodels.models import Generation, InventoryLevel, SalesMinute, Tally
from readmodels.selectors import product_stock, products_available
from shop.models import Product
from shop.stock import products_restock
from tests.readmodels.conftest import catch_up, place, settled

pytestmark = pytest.mark.django_db(transaction=True)


def a_little_trade(catalogue) -> None:
    """Orders from open stock and from a sale's hold, a hold, and a restock."""
    place("muskie-casting-rod", 2)
    place("spinning-reel", 1)
    place("spinning-reel", 3)
    hold_create(reference="sale-1", product="muskie-casting-rod", quantity=10)
    place("muskie-casting-rod", 1, hold="sale-1")
    place("tourney-casting-rod", 2)
    products_restock(product_ids=[catalogue["spinning-reel"].pk], quantity=5)


def _accepted(product: str) -> None:
    """A hot order's ACCEPTED event, as the hot path logs it."""
    from events.services import event_append

    event_append(
        source="shop.hotpath",
        detail_type="State change Notification",
        type="CHECKOUT",
        subtype="ORDER",
        status="ACCEPTED",
        data={"product": product, "quantity": 1},
    )


def _sale_opened(product: str, *, allocated: int = 50) -> None:
    """A sale's SALE/ALLOCATION/OPENED event, as `sale open` logs it."""
    from events.services import event_append

    event_append(
        source="shop.merchant",
        detail_type="State change Notification",
        type="SALE",
        subtype="ALLOCATION",
        status="OPENED",
        data={"product": product, "allocated": allocated, "reserved": 0, "sold": 0},
    )


def assert_inventory_is_the_record() -> None:
    for product in Product.objects.all():
        row = INVENTORY.live_rows().filter(product=product.slug).first()
        figures = (row.on_hand, row.held, row.available) if row else None
        assert figures == (product.stock, product.held, product.available), product.slug


def test_the_inventory_view_follows_orders_holds_and_restocks_to_the_stock_of_record(catalogue):
    catalogue["tourney-casting-rod"].reorder_point = 0
    catalogue["tourney-casting-rod"].save()
    # Stock set before any event was logged: the true-up tells the view (and the log) once.
    assert len(inventory_true_up()) == 3
    a_little_trade(catalogue)
    catch_up()

    assert_inventory_is_the_record()
    muskie = Product.objects.get(slug="muskie-casting-rod")
    assert (muskie.stock, muskie.held) == (97, 9)
    # The storefront's badges read the view: change the view, and the badge follows it.
    InventoryLevel.objects.filter(product="muskie-casting-rod").update(on_hand=12)
    assert product_stock(product=muskie).available == 3
    assert product_stock(product=muskie).state == "low"
    assert products_available([muskie.pk])[muskie.pk] == 3


def test_sales_per_minute_and_tallies_add_up_to_the_orders_placed(catalogue):
    a_little_trade(catalogue)
    catch_up()

    placed = Order.objects.filter(status=Order.Status.PLACED)
    revenue = sum(order.total_cents for order in placed)
    units = OrderLine.objects.aggregate(units=Sum("quantity"))["units"]
    minutes = SalesMinute.objects.aggregate(orders=Sum("orders"), units=Sum("units"), revenue=Sum("revenue_cents"))
    # One order, one product here: orders per product add up to the orders placed.
    assert minutes == {"orders": placed.count(), "units": units, "revenue": revenue}
    assert set(SalesMinute.objects.values_list("channel", flat=True)) == {"sale", "storefront"}
    for kind in ("supplier", "category"):
        tallies = Tally.objects.filter(kind=kind).aggregate(revenue=Sum("revenue_cents"), units=Sum("units"))
        assert tallies == {"revenue": revenue, "units": units}
    top = Tally.objects.filter(kind="supplier").order_by("-revenue_cents").first()
    assert top.key == "Northwoods Rod Company"
    assert top.revenue_cents == 3 * 14999 + 2 * 4999


def test_a_rebuild_from_a_snapshot_or_the_start_equals_the_live_view_and_swaps_it_in(catalogue):
    place("muskie-casting-rod", 2)
    catch_up()
    out = StringIO()
    call_command("events", "snapshot", stdout=out)
    assert "inventory: snapshot at position" in out.getvalue()
    assert set(Snapshot.objects.values_list("view", flat=True)) == {"inventory", "sales_per_minute", "tallies"}
    a_little_trade(catalogue)
    catch_up()
    live = {name: _state(name) for name in ("inventory", "sales_per_minute", "tallies")}
    generation = Generation.objects.get(view="sales_per_minute").live

    call_command("events", "rebuild", "sales_per_minute", "--from-snapshot", stdout=out)
    call_command("events", "rebuild", "inventory", stdout=out)
    call_command("events", "rebuild", "tallies", stdout=out)

    assert Generation.objects.get(view="sales_per_minute").live != generation
    # The old generation is gone with the swap: one set of rows per view.
    assert set(SalesMinute.objects.values_list("generation", flat=True)) == {
        Generation.objects.get(view="sales_per_minute").live
    }
    assert {name: _state(name) for name in live} == live
    call_command("events", "rebuild", "--check", stdout=out)


def _state(name: str) -> dict:
    from events.snapshots import view_get

    return view_get(name).state()


def test_rebuild_check_prints_the_differences_and_fails_when_a_view_is_wrong(catalogue):
    a_little_trade(catalogue)
    catch_up()
    call_command("events", "rebuild", "--check", stdout=StringIO())
    InventoryLevel.objects.filter(product="spinning-reel").update(on_hand=1000)
    Tally.objects.filter(kind="category", key="rods").delete()

    out = StringIO()
    with pytest.raises(CommandError, match="2 views differ"):
        call_command("events", "rebuild", "--check", stdout=out)
    printed = out.getvalue()
    assert "spinning-reel: live" in printed and "'on_hand': 1000" in printed
    assert "category|rods: live None" in printed
    assert "sales_per_minute: in step" in printed

    # Rebuilding the wrong views puts them right.
    call_command("events", "rebuild", "inventory", stdout=StringIO())
    call_command("events", "rebuild", "tallies", stdout=StringIO())
    call_command("events", "rebuild", "--check", stdout=StringIO())


def test_the_true_up_corrects_a_view_that_disagrees_with_the_record_and_logs_it(catalogue):
    inventory_true_up()
    a_little_trade(catalogue)
    catch_up()
    assert inventory_true_up() == []
    # A change the log never heard of (a hand-made fix in the database).
    Product.objects.filter(slug="spinning-reel").update(stock=50)

    corrections = inventory_true_up()

    assert [(c["product"], c["delta"]) for c in corrections] == [("spinning-reel", 50 - (80 - 4 + 5))]
    event = Event.objects.filter(type="INVENTORY", status="CORRECTED").latest("position")
    assert event.source == "shop.readmodels" and event.data["on_hand"] == 50
    catch_up()
    assert_inventory_is_the_record()
    assert inventory_true_up() == []


def test_sale_status_json_shows_the_inventory_view(catalogue, settings):
    a_little_trade(catalogue)
    catch_up()
    out = StringIO()
    # The legacy API is not running (nothing listens on the discard port, whatever serves on
    # the default one): its figures are missing (and the command says so, exit 1), the view's are not.
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"
    with pytest.raises(CommandError, match="Not read: muskie-casting-rod"):
        call_command("sale", "status", "muskie-casting-rod", "--json", stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["inventory"]["on_hand"] == 97
    assert figures["inventory"]["held"] == 9
    assert figures["inventory"]["available"] == 88


def test_old_events_are_pruned_only_once_every_views_snapshot_has_passed_them(catalogue, settings):
    settings.EVENT_RETENTION_DAYS = 1
    a_little_trade(catalogue)
    catch_up()
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    assert events_prune() == 0, "no view has a snapshot yet"
    call_command("events", "snapshot", stdout=StringIO())
    count = Event.objects.count()
    assert events_prune() == count
    # What was pruned is in the snapshots: a rebuild from them still equals the live views.
    place("spinning-reel", 1)
    catch_up()
    call_command("events", "rebuild", "--check", "--from-snapshot", stdout=StringIO())


def test_the_sale_pages_only_n_left_reads_the_inventory_view(catalogue, settings, client, django_assert_num_queries):
    from events.services import event_append
    from orders.models import SaleAllocation
    from orders.selectors import product_memo_forget

    settings.ROOT_URLCONF, settings.EDGE_ROUTER_ENABLED = "config.urls_hotpath", False
    product_memo_forget()
    SaleAllocation.objects.create(product=catalogue["muskie-casting-rod"], is_hot=True, allocated=10, per_order_limit=2)
    url = "/shop/rods/muskie-casting-rod/stock"
    # Until the view has seen the sale open, the allocation answers.
    assert client.get(url).json()["remaining"] == 10

    def logged(status: str, **data) -> None:
        kinds = (
            {"type": "SALE", "subtype": "ALLOCATION"}
            if status == "OPENED"
            else {"type": "CHECKOUT", "subtype": "ORDER"}
        )
        source = "shop.merchant" if status == "OPENED" else "shop.hotpath"
        data = {"product": "muskie-casting-rod", **data}
        event_append(source=source, detail_type="State change Notification", status=status, data=data, **kinds)

    logged("OPENED", allocated=10, reserved=0, sold=0)
    logged("ACCEPTED", quantity=2)
    logged("ACCEPTED", quantity=1)
    logged("COMPLETE", quantity=2, reserved_delta=-2, sold_delta=2)
    catch_up("inventory")

    # The consumer put the figure in the cache: the page reads it there, no query.
    with django_assert_num_queries(0):
        assert client.get(url).json()["remaining"] == 7
    assert 'only <span class="left">7</span> left' in client.get("/shop/rods/muskie-casting-rod/").content.decode()
    logged("ACCEPTED", quantity=2)
    catch_up("inventory")
    assert client.get(url).json()["remaining"] == 5


def test_a_batch_looks_up_the_live_generation_once_and_publishes_each_products_figure_once(catalogue, monkeypatch):
    """A stampede's batch is hundreds of one product's events: the consumer's cost per event is
    its own change, not a lookup and a cache write for each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import readmodels.inventory as inventory
    from events.consumers import consumer_run_all

    catch_up("inventory")
    for product in ("muskie-casting-rod", "tourney-casting-rod"):
        _sale_opened(product)
        for _ in range(20):
            _accepted(product)
    INVENTORY.live_generation()  # the view's row exists, as on any shop past its first event
    settled()  # every event readable: a transaction in flight elsewhere holds the log's readers back
    published = []
    real = inventory.remaining_publish

    def counted(*, product: str) -> int:
        published.append(product)
        return real(product=product)

    monkeypatch.setattr(inventory, "remaining_publish", counted)
    with CaptureQueriesContext(connection) as queries:
        result = consumer_run_all(consumer="inventory")
    assert result.processed >= 42 and not result.failed
    generation_lookups = [q for q in queries.captured_queries if q["sql"].startswith('SELECT "readmodels_generation"')]
    assert len(generation_lookups) == 1, "\n".join(q["sql"][:150] for q in generation_lookups)
    assert sorted(published) == ["muskie-casting-rod", "tourney-casting-rod"]
    assert inventory.remaining_publish(product="muskie-casting-rod") == 30


def test_a_batch_writes_each_rows_changes_once_and_the_view_equals_the_record_and_its_rebuild(catalogue):
    """A batch's changes to one row are summed and written once, in the order they must keep:
    a row the view has not seen yet is made by its first change (a STOCK event's figures), and
    a sale's opening (which sets figures) comes after the changes before it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.consumers import consumer_run_all

    inventory_true_up()  # stock set before anything was logged: three products the view has not seen
    a_little_trade(catalogue)
    for _ in range(10):
        _accepted("muskie-casting-rod")
    _sale_opened("muskie-casting-rod")
    for _ in range(5):
        _accepted("muskie-casting-rod")
    place("muskie-casting-rod", 1, hold="sale-1")
    catch_up("sales_per_minute", "tallies", "reorders")
    with CaptureQueriesContext(connection) as queries:
        result = consumer_run_all(consumer="inventory")
    assert result.processed > 25 and not result.failed
    writes = [q["sql"] for q in queries.captured_queries if "readmodels_inventorylevel" in q["sql"].split(" WHERE")[0]]
    writes = [sql for sql in writes if sql.startswith(("UPDATE", "INSERT"))]
    # Each of the three products' changes before the sale's opening in one write (an UPDATE
    # that finds no row, then the INSERT that makes it); then the opening, and muskie's
    # changes after it in one more: 8 writes for more than 25 events.
    assert len(writes) == 8, "\n".join(sql[:120] for sql in writes)

    assert_inventory_is_the_record()
    muskie = INVENTORY.live_rows().get(product="muskie-casting-rod")
    assert (muskie.allocated, muskie.reserved, muskie.sold) == (50, 5, 0)  # the opening counted afresh
    call_command("events", "rebuild", "--check", stdout=StringIO())


def test_an_event_that_fails_in_a_batch_is_the_one_kept_back_and_the_ones_before_it_count_once(
    catalogue, monkeypatch, settings
):
    """A batch is applied in one savepoint; when one event fails, the batch is tried again one
    event at a time: those before it count once, it is kept back, then dead-lettered."""
    from events.consumers import consumer_run, consumer_run_all
    from events.models import Checkpoint, DeadLetter
    from readmodels.sales import SALES_PER_MINUTE, SalesPerMinuteView

    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 2
    catch_up("sales_per_minute")
    orders = [place("spinning-reel", 1) for _ in range(5)]
    bad = orders[2].reference
    real = SalesPerMinuteView.apply

    def apply(self, event, generation):
        if event.data.get("reference") == bad:
            raise ValueError("a handler's bug on this one event")
        real(self, event, generation)

    monkeypatch.setattr(SalesPerMinuteView, "apply", apply)
    catch_up_to = Event.objects.filter(data__reference=bad).get()
    settled()  # a transaction of another database in flight would hold the five back

    first = consumer_run(consumer="sales_per_minute")
    assert first.failed and not first.dead_lettered
    counted = SALES_PER_MINUTE.rows().aggregate(n=Sum("orders"))["n"]
    assert counted == 2  # the two before it, once
    assert Checkpoint.objects.get(consumer="sales_per_minute").failures == 1

    second = consumer_run(consumer="sales_per_minute")
    assert second.dead_lettered == 1
    assert DeadLetter.objects.get(consumer="sales_per_minute").event_id == catch_up_to.pk
    # The events after it come in the next batch.
    assert not consumer_run_all(consumer="sales_per_minute").failed
    assert SALES_PER_MINUTE.rows().aggregate(n=Sum("orders"))["n"] == 4  # all but the bad one, once each


def test_the_pages_stock_stamp_moves_when_stock_changes_and_again_when_the_view_has_it(catalogue):
    """The catalogue pages keep the stock they read under the stamp: it moves at the commit of
    a stock change, and once more when the inventory view (what the pages show) has folded
    it in; a sale's orders, which move neither on hand nor held, leave it."""
    from events.consumers import consumer_run_all
    from readmodels.stock_stamp import stock_stamp

    catch_up("inventory")
    before = stock_stamp()
    _accepted("muskie-casting-rod")
    settled()
    assert consumer_run_all(consumer="inventory").processed >= 1
    assert stock_stamp() == before

    products_restock(product_ids=[catalogue["spinning-reel"].pk], quantity=5)
    restocked = stock_stamp()
    assert restocked != before
    settled()
    assert consumer_run_all(consumer="inventory").processed >= 1
    assert stock_stamp() != restocked


def test_an_order_drawn_from_a_sales_hold_leaves_the_pages_stock_where_it_was(catalogue):
    """A sale's drain places an order a second from its hold: on hand and held fall alike, so
    what a shopper may buy is unchanged, and the pages keep the stock they read (each move
    of the stamp makes every page read the database again). An order from open stock moves it."""
    from readmodels.stock_stamp import moves_available, stock_stamp

    hold_create(reference="sale-1", product="muskie-casting-rod", quantity=10)
    catch_up("inventory")
    before = stock_stamp()
    place("muskie-casting-rod", 2, hold="sale-1")
    assert stock_stamp() == before
    catch_up("inventory")
    assert stock_stamp() == before
    muskie = Product.objects.get(slug="muskie-casting-rod")
    row = INVENTORY.live_rows().get(product="muskie-casting-rod")
    assert (row.on_hand, row.held, row.available) == (muskie.stock, muskie.held, muskie.available)

    place("muskie-casting-rod", 1)
    moved = stock_stamp()
    assert moved != before
    catch_up("inventory")
    assert stock_stamp() != moved

    assert moves_available({"delta": -1, "held_delta": 0})
    assert moves_available({"delta": 0, "held_delta": 10})  # a hold taken
    assert not moves_available({"delta": -2, "held_delta": -2})
    assert moves_available({"delta": "two", "held_delta": -2})  # not as logged: read again
