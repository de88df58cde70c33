"""A sale's lifecycle against the real legacy API: the allocation is a hold in the stock of
record when the sale opens, follows every resize, and is released when it closes; the
reconciliation finds and repairs drift that is safe to repair."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

import legacy_client
from orders import placement, sale_window, sales
from orders.models import HotOrder, OrderStage, Reservation, SaleAllocation, SaleState
from orders.sale_reconcile import sale_reconcile, sale_status
from procs import free_port
from tests.orders.conftest import order_accept_as_buyer, order_body, order_claimed, post_order
from tests.orders.sale_support import hold_quantity, legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


def place_from_open_stock(
    reference: str, quantity: int = 1, *, hold: str | None = None, name="Walk In", email="walk.in@example.com"
):
    return legacy_client.order_place(
        reference=reference,
        name=name,
        email=email,
        lines=[{"product": "muskie-casting-rod", "quantity": quantity}],
        card_number="4242424242424242",
        hold=hold,
    )


def test_opening_holds_the_units_in_the_stock_of_record(product):
    allocation = sales.sale_open(product=product, units=30, per_order_limit=3)

    assert (allocation.state, allocation.is_hot, allocation.allocated) == (SaleState.OPEN, True, 30)
    assert allocation.hold_reference.startswith(f"sale-{product.pk}-")
    assert hold_quantity(allocation.hold_reference) == 30
    assert (stock().on_hand, stock().held, stock().available) == (100, 30, 70)


def test_opening_above_available_is_refused_on_allocated_and_holds_nothing(product):
    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_open(product=product, units=101)

    assert refused.value.field == "allocated" and "Only 100 available" in refused.value.message
    assert not SaleAllocation.objects.exists()
    assert stock().held == 0


def test_every_reference_is_fresh_per_opening(product):
    first = sales.sale_open(product=product, units=5).hold_reference
    sales.sale_close(allocation=SaleAllocation.objects.get())
    second = sales.sale_open(product=product, units=5).hold_reference
    assert first != second
    assert (hold_quantity(first), hold_quantity(second), stock().held) == (0, 5, 5)


def test_a_sale_of_all_available_stock_leaves_none_for_orders_without_the_hold(product):
    allocation = sales.sale_open(product=product, units=100)

    refused = place_from_open_stock("walk-in-1")
    drawn = place_from_open_stock("sale-order-1", 2, hold=allocation.hold_reference)

    assert (refused.status, refused.data["error"]) == (409, "out_of_stock")
    assert drawn.status == 201 and drawn.data["hold"] == allocation.hold_reference
    assert hold_quantity(allocation.hold_reference) == 98


def test_raising_and_lowering_the_allocation_moves_the_hold(product):
    allocation = sales.sale_open(product=product, units=20)

    sales.sale_resize(allocation=allocation, units=60)
    assert (allocation.allocated, hold_quantity(allocation.hold_reference)) == (60, 60)

    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_resize(allocation=allocation, units=101)
    assert refused.value.field == "allocated" and "at most 100" in refused.value.message
    allocation.refresh_from_db()
    assert (allocation.allocated, hold_quantity(allocation.hold_reference)) == (60, 60)

    sales.sale_resize(allocation=allocation, units=10)
    assert (allocation.allocated, hold_quantity(allocation.hold_reference), stock().available) == (10, 10, 90)


def test_lowering_below_what_is_reserved_or_sold_is_refused(product):
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order_accept_as_buyer(quantity=2)
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=3)

    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_resize(allocation=allocation, units=4)

    assert refused.value.field == "allocated" and "5 are already reserved or sold" in refused.value.message
    allocation.refresh_from_db()
    assert allocation.allocated == 10 and hold_quantity(allocation.hold_reference) == 10


def test_closing_keeps_only_what_orders_in_flight_need_then_releases_it(product):
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    kept = order_accept_as_buyer(quantity=2)
    failing = order_accept_as_buyer(quantity=1)

    sales.sale_close(allocation=allocation)
    allocation.refresh_from_db()
    assert (allocation.state, allocation.is_hot, allocation.allocated, allocation.remaining) == (
        SaleState.CLOSING,
        False,
        3,
        0,
    )
    assert hold_quantity(allocation.hold_reference) == 3 and stock().available == 97

    # An order failing after the close gives its unit back to open stock.
    order_claimed(failing.pk)
    placement.order_fail(order_id=failing.pk, stage=OrderStage.CARD_DECLINED)
    sales.sale_order_settled(order_id=failing.pk)
    allocation.refresh_from_db()
    assert (allocation.allocated, hold_quantity(allocation.hold_reference), stock().available) == (2, 2, 98)

    # The last order drawn on the hold: nothing is held any more.
    response = place_from_open_stock(
        kept.reference, 2, hold=allocation.hold_reference, name=kept.customer_name, email=kept.customer_email
    )
    order_claimed(kept.pk)
    placement.order_complete(order_id=kept.pk, legacy_order_id=response.data["id"], legacy_number="L1")
    sales.sale_order_settled(order_id=kept.pk)
    allocation.refresh_from_db()
    assert (allocation.state, allocation.allocated, allocation.sold) == (SaleState.CLOSED, 2, 2)
    assert (stock().on_hand, stock().held, stock().available) == (98, 0, 98)


def test_closing_a_sale_that_is_not_open_is_refused(product):
    allocation = SaleAllocation.objects.create(product=product, allocated=5)
    with pytest.raises(sales.SaleRefused, match="not open"):
        sales.sale_close(allocation=allocation)


def test_a_sale_whose_window_ended_is_closed_by_the_sweep(product):
    allocation = sales.sale_open(product=product, units=8, ends_at=timezone.now() + timedelta(hours=1))
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    assert sale_window.sales_due_close() == ["muskie-casting-rod"]

    allocation.refresh_from_db()
    assert allocation.state == SaleState.CLOSED and not allocation.is_hot
    assert (stock().held, stock().available) == (0, 100)


def test_a_sale_closed_by_the_sweep_takes_its_product_s_pages_off_the_hot_path(product):
    from django.core.management import call_command

    from edge.models import Route
    from tests.edge.conftest import ensure_origins

    ensure_origins()
    call_command(
        "edge_route", "add", "muskie-hot", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable"
    )
    call_command("edge_route", "add", "reels-hot", "/shop/reels/*", "--origin", "hotpath", "--enable")
    allocation = sales.sale_open(product=product, units=8, ends_at=timezone.now() + timedelta(hours=1))
    SaleAllocation.objects.filter(pk=allocation.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    assert sale_window.sales_due_close() == ["muskie-casting-rod"]

    # Whatever its name, the route that sent this product to the hot path is off; others stay.
    assert dict(Route.objects.values_list("name", "enabled")) == {"muskie-hot": False, "reels-hot": True}


def test_a_product_that_is_not_on_sale_in_the_shop_cannot_open_a_sale(product):
    product.is_active = False
    product.save(update_fields=["is_active"])

    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_open(product=product, units=5)

    assert refused.value.field == "product"
    assert refused.value.message == "Muskie Casting Rod is not on sale in the shop: make it active first."
    assert stock().held == 0 and not SaleAllocation.objects.exists()


def test_a_limit_per_order_above_the_units_is_refused_on_the_limit(product):
    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_open(product=product, units=5, per_order_limit=6)

    assert (refused.value.field, refused.value.message) == (
        "per_order_limit",
        "At most 5 per order: the sale has 5 units.",
    )
    assert stock().held == 0


def test_switching_the_hot_path_off_by_other_means_closes_the_sale_on_the_next_sweep(product):
    allocation = sales.sale_open(product=product, units=8)
    SaleAllocation.objects.filter(pk=allocation.pk).update(is_hot=False)

    sale_window.sales_due_close()

    assert stock().held == 0


def test_the_worker_draws_on_the_sale_hold(product):
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=2)

    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"

    order.refresh_from_db()
    allocation.refresh_from_db()
    assert order.reservation == Reservation.CONFIRMED
    assert (allocation.sold, allocation.reserved, hold_quantity(allocation.hold_reference)) == (2, 0, 8)
    assert stock().on_hand == 98 and stock().available == 90


def test_a_worker_with_a_cloud_host_s_long_node_name_takes_its_permit_and_places_the_order(product):
    sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    node = "celery@ip-10-0-12-34.eu-west-1.compute.internal-with-a-longer-suffix"

    assert placement.order_send_to_legacy(order_id=order.pk, worker=node) == "complete"
    assert len(placement.holder_name(node)) == 64 and placement.holder_name(node) != placement.holder_name(node)


def test_a_sale_whose_last_hold_could_not_be_released_is_not_opened_again_over_it(product, monkeypatch):
    allocation = sales.sale_open(product=product, units=5, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    sales.sale_close(allocation=allocation)
    order_claimed(order.pk)
    placement.order_fail(order_id=order.pk, stage=OrderStage.SOLD_OUT)  # its unit goes back
    first = SaleAllocation.objects.get().hold_reference

    def unreachable(**kwargs):
        raise legacy_client.LegacyUnavailable("legacy API answered 503")

    monkeypatch.setattr(legacy_client, "hold_release", unreachable)
    with pytest.raises(sales.SaleRefused, match="could not be released"):
        sales.sale_open(product=product, units=3, per_order_limit=2)
    monkeypatch.undo()

    assert SaleAllocation.objects.get().hold_reference == first
    assert stock().held == 1  # the old hold, still owned by the closing sale: nothing taken beside it
    reopened = sales.sale_open(product=product, units=3, per_order_limit=2)
    assert reopened.state == SaleState.OPEN and hold_quantity(first) == 0 and stock().held == 3


def test_a_hold_taken_although_its_answer_timed_out_is_given_back(product, monkeypatch):
    real_create = legacy_client.hold_create

    def taken_then_timed_out(**kwargs):
        real_create(**kwargs)
        raise legacy_client.LegacyUnavailable("read timed out", sent=True)

    monkeypatch.setattr(legacy_client, "hold_create", taken_then_timed_out)
    with pytest.raises(sales.SaleRefused, match="cannot be reached"):
        sales.sale_open(product=product, units=10)
    monkeypatch.undo()

    # The merchant's retry takes the only hold: nothing is left held twice.
    assert stock().held == 0
    sales.sale_open(product=product, units=10)
    assert stock().held == 10


def test_a_reference_placed_earlier_from_open_stock_releases_the_reservation(product):
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    # The monolith took the same buyer's order first, from open stock.
    first = place_from_open_stock(order.reference, 1, name=order.customer_name, email=order.customer_email)
    assert first.status == 201 and first.data["hold"] is None

    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"

    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.reservation) == ("complete", Reservation.RELEASED)
    # The sale's units were not drawn: they are still held and still on sale.
    assert (allocation.sold, allocation.remaining, hold_quantity(allocation.hold_reference)) == (0, 10, 10)


def test_reconcile_shrinks_a_hold_larger_than_owed_when_no_order_is_in_flight(product):
    allocation = sales.sale_open(product=product, units=10)
    legacy_client.hold_set(reference=allocation.hold_reference, quantity=15)

    (check,) = sale_reconcile()

    # Reported as found (5 held too many), and what was done about it.
    assert (check.hold, check.drift, check.action) == (15, 5, "shrunk to 10")
    assert hold_quantity(allocation.hold_reference) == 10


def test_reconcile_reports_a_short_hold_as_found_and_grows_it(product, caplog):
    allocation = sales.sale_open(product=product, units=10)
    legacy_client.hold_set(reference=allocation.hold_reference, quantity=4)

    (check,) = sale_reconcile()

    assert (check.hold, check.drift, check.action) == (4, -6, "grown to 10")
    assert "'drift': -6" in caplog.text
    assert hold_quantity(allocation.hold_reference) == 10


def test_reconcile_never_shrinks_under_an_order_in_flight(product):
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=2)
    HotOrder.objects.filter(pk=order.pk).update(attempts=1)  # a worker has sent it
    legacy_client.hold_set(reference=allocation.hold_reference, quantity=12)

    (check,) = sale_reconcile()

    assert check.in_flight == 1 and check.action.startswith("not repaired")
    assert hold_quantity(allocation.hold_reference) == 12


def test_reconcile_leaves_the_hold_alone_when_an_order_completes_while_it_reads(product, monkeypatch):
    """The reconciliation reads the sale, then the hold, then the orders, not in one snapshot: an
    order the legacy API placed from the hold and a worker recorded in between looked like a
    hold one short (the sale read before it sold, the hold after), and the hold was grown by
    one for good (a full benchmark run's hold drift). Figures that disagree are left for the
    next run."""
    import orders.sale_reconcile

    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    order = order_accept_as_buyer(quantity=1)
    real_hold_get = legacy_client.hold_get

    def hold_read_while_a_worker_completes(**kwargs):
        if HotOrder.objects.get(pk=order.pk).status == "processing":  # the first read only
            order_claimed(order.pk)
            assert placement.order_send_to_legacy(order_id=order.pk) == "complete"
        return real_hold_get(**kwargs)

    monkeypatch.setattr(orders.sale_reconcile.legacy_client, "hold_get", hold_read_while_a_worker_completes)
    (check,) = sale_reconcile()

    assert (check.sold, check.sold_by_orders, check.hold) == (0, 1, 9)
    assert check.action == "not repaired: 0 counted sold, 1 in completed orders"
    assert hold_quantity(allocation.hold_reference) == 9
    allocation.refresh_from_db()
    assert allocation.allocated - allocation.sold == 9


def test_reconcile_takes_a_missing_hold_again(product):
    allocation = sales.sale_open(product=product, units=10)
    legacy_client.hold_release(reference=allocation.hold_reference)
    SaleAllocation.objects.filter(pk=allocation.pk).update(hold_reference=f"sale-{product.pk}-lost")

    (check,) = sale_reconcile(product=product)

    allocation.refresh_from_db()
    assert (check.hold, check.drift) == (None, -10)
    assert check.action == f"retaken as {allocation.hold_reference}"
    assert allocation.hold_reference != f"sale-{product.pk}-lost"
    assert hold_quantity(allocation.hold_reference) == 10 and stock().held == 10


def test_reconcile_takes_again_a_hold_released_at_the_stock_of_record_and_keeps_the_202_in_flight(product):
    """A hold released at the legacy API behind the sale's back (a caller with its token) reads
    as released, quantity 0, and cannot be set again: the reconciliation tried to set it on
    every run, refused each time, while every buyer got a 202 that failed as sold out."""
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    released = allocation.hold_reference
    order = order_accept_as_buyer(quantity=1)
    legacy_client.hold_release(reference=released)

    (check,) = sale_reconcile(product=product)

    allocation.refresh_from_db()
    assert check.action == f"retaken as {allocation.hold_reference}" and allocation.hold_reference != released
    assert hold_quantity(allocation.hold_reference) == 10 and stock().held == 10
    order_claimed(order.pk)
    assert placement.order_send_to_legacy(order_id=order.pk) == "complete"
    assert hold_quantity(allocation.hold_reference) == 9
    assert sale_reconcile(product=product)[0].action == "in step"


def test_a_released_hold_whose_units_were_sold_elsewhere_cuts_the_sale(product):
    allocation = sales.sale_open(product=product, units=10)
    legacy_client.hold_release(reference=allocation.hold_reference)
    place_from_open_stock("walk-in", quantity=100)

    (check,) = sale_reconcile(product=product)

    assert check.action.endswith("the sale cut to 0 allocated, what the hold and the sold units cover")
    allocation.refresh_from_db()
    assert allocation.remaining == 0


def test_reconcile_reports_a_hold_it_cannot_take_again(product):
    allocation = sales.sale_open(product=product, units=10)
    legacy_client.hold_release(reference=allocation.hold_reference)
    SaleAllocation.objects.filter(pk=allocation.pk).update(hold_reference=f"sale-{product.pk}-lost")
    legacy_client.hold_create(reference="another-channel", product=product.slug, quantity=95)

    (check,) = sale_reconcile()

    assert check.action == (
        "not repaired: the hold is short and only 5 are available; "
        "the sale cut to 0 allocated, what the hold and the sold units cover"
    )
    assert check.drift == -10
    allocation.refresh_from_db()
    assert allocation.remaining == 0  # no buyer is promised a unit no hold keeps


def test_a_hold_cut_outside_the_shop_that_cannot_grow_back_cuts_the_sale_and_keeps_every_202(client, product):
    """The hold was shrunk at the legacy API and its units sold to other channels: the sale
    cannot get them back, so it is cut to what its hold keeps (never below what accepted orders
    reserved). Until then every buyer of those units got a 202 that later failed as sold out."""
    allocation = sales.sale_open(product=product, units=10, per_order_limit=2)
    first = order_accept_as_buyer(quantity=2)
    legacy_client.hold_set(reference=allocation.hold_reference, quantity=5)
    place_from_open_stock("walk-in", quantity=95)  # the stock of record has nothing left to add

    (check,) = sale_reconcile()

    assert (check.hold, check.drift) == (5, -5)
    assert check.action.endswith("the sale cut to 5 allocated, what the hold and the sold units cover")
    allocation.refresh_from_db()
    assert (allocation.allocated, allocation.reserved, allocation.remaining) == (5, 2, 3)
    assert sale_reconcile()[0].action == "in step"
    # Buyers get what the hold keeps and no more; every 202 is placed.
    answers = [post_order(client, order_body(quantity=q)).status_code for q in (2, 2, 1)]
    assert answers == [202, 409, 202]
    for order in HotOrder.objects.order_by("pk"):
        assert placement.order_send_to_legacy(order_id=order.pk) == "complete", order.last_error
    assert HotOrder.objects.get(pk=first.pk).stage == OrderStage.SENT_TO_FULFILMENT
    assert hold_quantity(allocation.hold_reference) == 0


def test_status_shows_the_sale_beside_the_stock_of_record(product):
    sales.sale_open(product=product, units=12)
    order_accept_as_buyer(quantity=1)

    figures = sale_status(product=product)

    assert {k: figures[k] for k in ("state", "allocated", "reserved", "sold", "remaining", "hold")} == {
        "state": "open",
        "allocated": 12,
        "reserved": 1,
        "sold": 0,
        "remaining": 11,
        "hold": 12,
    }
    assert (figures["on_hand"], figures["held"], figures["available"]) == (100, 12, 88)


def test_a_first_sale_of_fewer_units_than_the_default_limit_limits_orders_to_its_units(product):
    allocation = sales.sale_open(product=product, units=1)
    assert (allocation.allocated, allocation.per_order_limit) == (1, 1)


def test_reopening_with_fewer_units_than_the_last_limit_asks_for_a_limit_and_holds_nothing(product):
    sales.sale_close(allocation=sales.sale_open(product=product, units=10, per_order_limit=5))

    with pytest.raises(sales.SaleRefused) as refused:
        sales.sale_open(product=product, units=3)
    assert refused.value.field == "per_order_limit" and "limit of 5 per order" in refused.value.message
    assert SaleAllocation.objects.get().state == SaleState.CLOSED and stock().held == 0

    reopened = sales.sale_open(product=product, units=3, per_order_limit=3)
    assert (reopened.allocated, reopened.per_order_limit, stock().held) == (3, 3, 3)


def test_a_draft_never_opened_is_a_first_sale_for_its_limit(product):
    SaleAllocation.objects.create(product=product, allocated=0, per_order_limit=4)  # drafted in the admin

    allocation = sales.sale_open(product=product, units=2)
    assert (allocation.allocated, allocation.per_order_limit) == (2, 2)


@pytest.mark.postgres
def test_a_change_under_way_keeps_a_second_one_out_though_the_cache_forgot_its_lock(product):
    """The sale's lock was a key in the cache: a Redis restart, failover or eviction (or a lease
    shorter than a slow legacy API's calls) let a second resize in while the first still moved
    the hold, and the two left the allocation at 14 with the hold at 12."""
    sale = sales.sale_open(product=product, units=10, per_order_limit=2)
    taken, done = threading.Event(), threading.Event()

    def first_change():
        with sales.sale_lock(product.pk):
            taken.set()
            done.wait(30)

    thread = threading.Thread(target=first_change)
    thread.start()
    try:
        assert taken.wait(10)
        cache.clear()  # what a cache's restart loses
        with pytest.raises(sales.SaleBusy):
            sales.sale_resize(allocation=sale, units=12)
    finally:
        done.set()
        thread.join(10)
    sale = sales.sale_resize(allocation=SaleAllocation.objects.get(pk=sale.pk), units=12)
    assert sale.allocated == hold_quantity(sale.hold_reference) == 12


def test_a_close_the_legacy_api_did_not_hear_says_the_hold_still_keeps_the_units(product, settings):
    """It said "the rest released" while the hold, not told, kept every unsold unit from other
    buyers until the reconciliation."""
    sale = sales.sale_open(product=product, units=10, per_order_limit=2)
    settings.LEGACY_API_URL = f"http://127.0.0.1:{free_port()}/legacy-api"  # nothing listens there
    out = io.StringIO()

    call_command("sale", "close", product.slug, stdout=out)

    said = out.getvalue()
    assert "the rest not released yet" in said and "still keeps its units" in said, said
    sale.refresh_from_db()
    assert sale.state == SaleState.CLOSING
