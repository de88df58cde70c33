"""Vendor reorders: a draft purchase order when available stock falls below the reorder point,
exactly one per crossing however many orders cross it together; confirming and receiving it
restocks the product through the legacy API, which is itself an event."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from events.models import Event
from legacy_api.models import StockReceipt
from readmodels.models import PurchaseOrder
from readmodels.reorders import (
    PurchaseRefused,
    purchase_order_cancel,
    purchase_order_confirm,
    purchase_order_draft,
    purchase_order_receive,
)
from shop.models import Product
from shop.stock import product_stock_set
from tests.readmodels.conftest import catch_up, place

pytestmark = pytest.mark.django_db(transaction=True)


def test_falling_below_the_reorder_point_drafts_one_purchase_order_per_crossing(catalogue):
    # tourney-casting-rod: 60 on hand, reorder point 10.
    place("tourney-casting-rod", 45)  # 15 left: above the point
    catch_up()
    assert not PurchaseOrder.objects.exists()
    place("tourney-casting-rod", 6)  # 9 left: crossed
    place("tourney-casting-rod", 2)  # 7 left: still below, not a new crossing
    catch_up()

    (draft,) = PurchaseOrder.objects.all()
    assert draft.status == "draft" and draft.product.slug == "tourney-casting-rod"
    assert draft.supplier.name == "Northwoods Rod Company"
    assert (draft.available_then, draft.reorder_point, draft.quantity) == (9, 10, 11)
    drafted = Event.objects.get(source="shop.reorders", status="DRAFTED")
    assert drafted.data["reference"] == draft.reference

    # Back above the point and below it again, while the first draft is still open: still one.
    product_stock_set(product_id=catalogue["tourney-casting-rod"].pk, stock=30)
    place("tourney-casting-rod", 25)
    catch_up()
    assert PurchaseOrder.objects.count() == 1
    # Once it is decided, the next crossing drafts again.
    purchase_order_cancel(order_id=draft.pk)
    product_stock_set(product_id=catalogue["tourney-casting-rod"].pk, stock=30)
    place("tourney-casting-rod", 25)
    catch_up()
    assert PurchaseOrder.objects.filter(status="draft").count() == 1
    assert PurchaseOrder.objects.count() == 2


def _at_once(count: int, work) -> list:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
def test_fifty_concurrent_orders_crossing_the_point_together_draft_exactly_one(catalogue):
    Product.objects.filter(slug="tourney-casting-rod").update(stock=60, reorder_point=40)
    errors = _at_once(50, lambda i: place("tourney-casting-rod", 1))
    assert not errors, errors[:3]
    catch_up()
    assert Product.objects.get(slug="tourney-casting-rod").stock == 10
    assert PurchaseOrder.objects.filter(product__slug="tourney-casting-rod").count() == 1


@pytest.mark.postgres
def test_the_database_holds_one_draft_per_product_when_fifty_draft_it_at_once(catalogue):
    product = Product.objects.select_related("supplier").get(slug="tourney-casting-rod")
    drafts: list[str] = []
    errors = _at_once(50, lambda i: drafts.append(purchase_order_draft(product=product, available=5).reference))
    assert not errors, errors[:3]
    assert PurchaseOrder.objects.filter(status="draft").count() == 1
    assert set(drafts) == {PurchaseOrder.objects.get().reference}


def test_confirming_and_receiving_restocks_through_the_legacy_api(catalogue, live_server, settings):
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    place("tourney-casting-rod", 51)
    catch_up()
    draft = PurchaseOrder.objects.get()
    with pytest.raises(PurchaseRefused):
        purchase_order_receive(order_id=draft.pk)

    purchase_order_confirm(order_id=draft.pk)
    received = purchase_order_receive(order_id=draft.pk)

    assert received.status == "received"
    assert Product.objects.get(slug="tourney-casting-rod").stock == 9 + draft.quantity
    receipt = StockReceipt.objects.get()
    assert (receipt.reference, receipt.quantity) == (draft.reference, draft.quantity)
    restock = Event.objects.get(source="legacy.stock", data__reason="restock")
    assert restock.data["receipt"] == draft.reference and restock.data["delta"] == draft.quantity
    assert list(Event.objects.filter(source="shop.reorders").order_by("position").values_list("status", flat=True)) == [
        "DRAFTED",
        "CONFIRMED",
        "RECEIVED",
    ]
    # Received twice (a retry after a lost answer): the stock of record adds it once.
    import legacy_client

    legacy_client.stock_receive(reference=draft.reference, product="tourney-casting-rod", quantity=draft.quantity)
    assert Product.objects.get(slug="tourney-casting-rod").stock == 9 + draft.quantity
    with pytest.raises(legacy_client.LegacyRefused):
        legacy_client.stock_receive(reference=draft.reference, product="tourney-casting-rod", quantity=1)
    with pytest.raises(legacy_client.LegacyRefused):
        legacy_client.stock_receive(
            reference=uuid.uuid4().hex, product="tourney-casting-rod", quantity=1, caller="storefront"
        )
    catch_up()
    assert PurchaseOrder.objects.count() == 1, "the restock is no crossing"


def test_a_merchant_confirms_and_cancels_drafts_in_the_admin(catalogue, admin_client, viewer):
    product = Product.objects.select_related("supplier").get(slug="tourney-casting-rod")
    first = purchase_order_draft(product=product, available=5)
    changelist = "/admin/readmodels/purchaseorder/"
    page = admin_client.get(changelist).content.decode()
    assert first.reference in page and "Northwoods Rod Company" in page
    # Staff who may only look are refused the decision.
    refused = viewer.post(changelist, {"action": "confirm", "_selected_action": [first.pk]})
    assert refused.status_code == 403

    admin_client.post(changelist, {"action": "confirm", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.status == "confirmed"
    second = purchase_order_draft(product=product, available=4)
    admin_client.post(changelist, {"action": "cancel", "_selected_action": [second.pk]})
    second.refresh_from_db()
    assert second.status == "cancelled"
    # A confirmed order cannot be cancelled: the merchant is told, nothing changes.
    answer = admin_client.post(changelist, {"action": "cancel", "_selected_action": [first.pk]}, follow=True)
    assert "is confirmed, not draft" in answer.content.decode()
    first.refresh_from_db()
    assert first.status == "confirmed"


def test_replaying_the_log_to_the_reorders_consumer_drafts_nothing_again(catalogue, capsys):
    place("tourney-casting-rod", 51)  # 9 left: crossed
    catch_up()
    (draft,) = PurchaseOrder.objects.all()
    purchase_order_cancel(order_id=draft.pk)  # decided: a second draft would be allowed

    call_command("events", "replay", "reorders", "--from", "0")

    assert list(PurchaseOrder.objects.values_list("reference", "status")) == [(draft.reference, "cancelled")]
    assert Event.objects.filter(source="shop.reorders", status="DRAFTED").count() == 1


def test_a_replay_drafts_nothing_for_a_crossing_answered_by_the_draft_open_then(catalogue):
    """The product fell below its point again while the first draft was still open: that
    draft answered the second crossing too. Once the draft was cancelled, a replay of the log
    drafted a purchase order for the old second crossing, with the product well stocked."""
    rod = catalogue["tourney-casting-rod"]
    place("tourney-casting-rod", 51)  # 9 left: crossed
    catch_up()
    (draft,) = PurchaseOrder.objects.all()
    product_stock_set(product_id=rod.pk, stock=30)
    place("tourney-casting-rod", 25)  # crossed again, the draft still open: it answers this one too
    catch_up()
    assert PurchaseOrder.objects.count() == 1
    purchase_order_cancel(order_id=draft.pk)
    product_stock_set(product_id=rod.pk, stock=60)  # well stocked again

    call_command("events", "replay", "reorders", "--from", "0")

    assert list(PurchaseOrder.objects.values_list("reference", "status")) == [(draft.reference, "cancelled")]
    assert Event.objects.filter(source="shop.reorders", status="DRAFTED").count() == 1


@pytest.mark.parametrize("view", ["inventory", "sales_per_minute", "tallies"])
def test_a_read_model_is_not_replayed_into_its_live_rows(catalogue, view):
    place("tourney-casting-rod", 3)
    catch_up()
    before = call_command_output("events", "rebuild", "--check")

    with pytest.raises(CommandError, match=f"{view} is a read model.*events rebuild {view}"):
        call_command("events", "replay", view, "--from", "0")

    assert call_command_output("events", "rebuild", "--check") == before


def call_command_output(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
