"""A merchant gives up on a dead-lettered order the legacy API will never place (its reference
used for another body, a body it refuses): cancelled, its units released, its closing sale
closed; never one the legacy API has after all (that one is completed), never one a worker may
be placing, and never without the legacy API's word. Against the legacy API served over HTTP."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest
from django.contrib.messages import get_messages

import legacy_client
from events.models import Event
from legacy_api.models import Order as LegacyOrder
from legacy_api.models import PaymentAuthorisation
from orders import dead_letters, placement, sales
from orders.lifecycle import FAILURES, TRANSITIONS
from orders.models import DeadLetter, HotOrder, OrderStage, OrderStatus, Reservation, SaleAllocation, SaleState
from orders.tasks import order_process
from tests.conftest import eventually
from tests.late_delivery import DelayProxy
from tests.orders.conftest import APPROVED_CARD, order_accept_as_buyer
from tests.orders.sale_support import hold_quantity, legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED_FOR_GOOD = "legacy API refused the order (400): {'error': 'invalid'}"


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    return legacy_serve(settings, live_server)


@pytest.fixture
def sale(product) -> SaleAllocation:
    return sales.sale_open(product=product, units=10, per_order_limit=2)


def reference_taken_by_another_body(order: HotOrder) -> None:
    """The storefront placed the order's reference first, for another body: the legacy API
    refuses the hot path's body under it for ever (422 reference_reused)."""
    other = legacy_client.order_place(
        reference=order.reference,
        name="Someone Else",
        email="someone.else@example.com",
        lines=[{"product": order.product.slug, "quantity": 1}],
        card_number=APPROVED_CARD,
    )
    assert other.outcome == legacy_client.Outcome.PLACED


def placed_by_an_attempt_whose_answer_was_lost(order: HotOrder, sale: SaleAllocation) -> legacy_client.OrderAnswer:
    """A worker's request placed the order, its answer never came back, and the order was
    dead-lettered when the retries ran out."""
    placed = legacy_client.order_place(
        reference=order.reference,
        name=order.customer_name,
        email=order.customer_email,
        lines=[{"product": order.product.slug, "quantity": order.quantity}],
        card_number=APPROVED_CARD,
        caller="hotpath",
        hold=sale.hold_reference,
    )
    assert placed.outcome == legacy_client.Outcome.PLACED
    placement.order_dead_letter(order_id=order.pk, error="legacy API did not answer: ReadTimeoutError")
    return placed


def status_of(client, order: HotOrder) -> dict:
    response = client.get(f"/shop/rods/muskie-casting-rod/orders/{order.number}/{order.token}")
    assert response.status_code == 200
    return response.json()


def test_a_dead_letter_the_legacy_api_refuses_for_good_is_cancelled_and_its_units_released(
    client, admin_user, sale, mailoutbox
):
    order = order_accept_as_buyer(quantity=2)
    reference_taken_by_another_body(order)
    assert placement.order_send_to_legacy(order_id=order.pk) == "dead_lettered"
    # A redrive meets the same refusal: it cannot end such an order.
    assert dead_letters.order_redrive(order_id=order.pk, user=admin_user)
    assert placement.order_send_to_legacy(order_id=order.pk) == "dead_lettered"

    cancelled = dead_letters.order_cancel(order_id=order.pk, user=admin_user)

    order.refresh_from_db()
    assert cancelled.stage == order.stage == OrderStage.CANCELLED
    assert (order.status, order.reservation, order.card_sealed) == (OrderStatus.FAILED, Reservation.RELEASED, "")
    sale.refresh_from_db()
    assert (sale.reserved, sale.sold, sale.remaining) == (0, 0, 10)
    assert order.history.last().detail.startswith(f"cancelled by {admin_user}")
    event = Event.objects.filter(source="shop.hotpath").order_by("position").last()
    assert (event.status, event.data["stage"], event.data["reserved_delta"]) == ("FAILED", "cancelled", -2)
    # Every dead letter of the order is settled, by whom and how; the redriven one stays as it was.
    letters = list(order.dead_letters.order_by("created_at").values_list("redriven_by", "resolution"))
    assert letters == [(admin_user.pk, ""), (admin_user.pk, "cancelled")]
    assert not DeadLetter.objects.filter(redriven_at__isnull=True).exists()
    # The buyer's status says so, and the email its dead-lettered status promised tells them.
    answer = status_of(client, order)
    assert (answer["status"], answer["stage"]) == ("failed", "cancelled")
    assert "cancelled" in answer["detail"] and "nothing was charged" in answer["detail"]
    told = [message for message in mailoutbox if order.customer_email in message.to]
    assert [message.subject for message in told] == [f"We could not place your order {order.number}"]
    assert "nothing was charged" in told[0].body and "Muskie Casting Rod" in told[0].body


def test_cancelling_the_last_dead_letter_of_a_closing_sale_closes_it_and_gives_its_hold_back(sale):
    order = order_accept_as_buyer(quantity=2)
    placement.order_dead_letter(order_id=order.pk, error=REFUSED_FOR_GOOD)
    sales.sale_close(allocation=sale)
    sale.refresh_from_db()
    assert sale.state == SaleState.CLOSING and hold_quantity(sale.hold_reference) == 2

    dead_letters.order_cancel(order_id=order.pk)

    sale.refresh_from_db()
    assert (sale.state, sale.reserved, hold_quantity(sale.hold_reference)) == (SaleState.CLOSED, 0, 0)
    assert stock().held == 0


def test_an_order_the_legacy_api_placed_after_all_is_completed_not_cancelled(sale, admin_user, mailoutbox):
    order = order_accept_as_buyer(quantity=2, email="ann@example.com")
    placed = placed_by_an_attempt_whose_answer_was_lost(order, sale)

    ended = dead_letters.order_cancel(order_id=order.pk, user=admin_user)

    order.refresh_from_db()
    assert ended.stage == order.stage == OrderStage.SENT_TO_FULFILMENT
    assert (order.legacy_number, order.reservation) == (placed.data["number"], Reservation.CONFIRMED)
    sale.refresh_from_db()
    assert (sale.reserved, sale.sold) == (0, 2)
    confirmations = [message for message in mailoutbox if message.to == ["ann@example.com"]]
    assert [message.subject for message in confirmations] == [f"Your order {order.number} is confirmed"]
    assert order.dead_letters.get().resolution == f"placed after all ({placed.data['number']})"


def test_an_order_a_worker_may_still_be_placing_is_not_cancelled(sale):
    order = order_accept_as_buyer(quantity=2)
    # Its last attempt went out unanswered: the worker keeps its claim while the request may run.
    assert placement.order_claim(order_id=order.pk, holder="worker-1") is not None
    placement.order_dead_letter(order_id=order.pk, error="legacy API did not answer (after 9 attempts)")

    with pytest.raises(dead_letters.CancelRefused, match="worker may still be placing it"):
        dead_letters.order_cancel(order_id=order.pk)

    placement.order_claim_release(order_id=order.pk, holder="worker-1")
    assert dead_letters.order_cancel(order_id=order.pk).stage == OrderStage.CANCELLED


def test_an_order_cancelled_is_not_placed_by_its_last_request_arriving_late(
    settings, live_server, legacy, sale, mailoutbox
):
    """The worker's last request was held up on its way past its timeout; the order was dead-
    lettered and, once the worker's claim ended, cancelled ("nothing was charged") on the legacy
    API's word that it had no such order. Then the request arrived: placed, it charged the buyer,
    drew the sale's hold for units the sale offered again, and a later buyer's 202 ended sold out."""
    order = order_accept_as_buyer(quantity=2)
    proxy = DelayProxy(urlparse(live_server.url).port, delay=12)
    settings.LEGACY_API_URL, settings.LEGACY_API_TIMEOUT = f"http://127.0.0.1:{proxy.port}/legacy-api", 1
    try:
        # Its last attempt: unanswered, and the order dead-lettered as its retries have run out.
        assert order_process.apply(args=[order.pk], retries=settings.ORDERS_MAX_RETRIES).get() == "dead_lettered"
        settings.LEGACY_API_URL = legacy
        # The merchant cancels as soon as the worker's claim lets them.
        eventually(lambda: _cancelled(order), timeout=20)
        assert proxy.forwarded.wait(20)  # and now the request arrives
    finally:
        proxy.close()

    assert not LegacyOrder.objects.filter(reference=order.reference, status=LegacyOrder.Status.PLACED).exists()
    assert not PaymentAuthorisation.objects.filter(key=order.reference, approved=True, voided_at__isnull=True).exists()
    assert hold_quantity(sale.hold_reference) == 10
    later = [order_accept_as_buyer(quantity=2) for _ in range(5)]
    assert [placement.order_send_to_legacy(order_id=o.pk) for o in later] == ["complete"] * 5


def _cancelled(order: HotOrder) -> bool:
    try:
        return dead_letters.order_cancel(order_id=order.pk).stage == OrderStage.CANCELLED
    except dead_letters.CancelRefused:
        return False  # a worker may still be placing it


def test_nothing_is_cancelled_when_the_legacy_api_cannot_say_whether_it_has_the_order(settings, sale):
    order = order_accept_as_buyer(quantity=2)
    placement.order_dead_letter(order_id=order.pk, error=REFUSED_FOR_GOOD)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.LEGACY_API_URL = f"http://127.0.0.1:{closed.getsockname()[1]}/legacy-api"

    with pytest.raises(dead_letters.CancelRefused, match="could not say whether it has the order"):
        dead_letters.order_cancel(order_id=order.pk)

    order.refresh_from_db()
    sale.refresh_from_db()
    assert (order.stage, order.reservation, sale.reserved) == (OrderStage.DEAD_LETTERED, Reservation.HELD, 2)
    assert order.card_sealed and DeadLetter.objects.filter(redriven_at__isnull=True).count() == 1


def test_only_a_dead_lettered_order_can_be_cancelled(sale):
    order = order_accept_as_buyer(quantity=1)

    with pytest.raises(dead_letters.CancelRefused, match="only a dead-lettered order"):
        dead_letters.order_cancel(order_id=order.pk)

    assert HotOrder.objects.get(pk=order.pk).stage == OrderStage.QUEUED
    assert [stage for stage, targets in TRANSITIONS.items() if OrderStage.CANCELLED in targets] == [
        OrderStage.DEAD_LETTERED
    ]
    assert OrderStage.CANCELLED in FAILURES and TRANSITIONS[OrderStage.CANCELLED] == frozenset()


@pytest.mark.parametrize("listing", ["hotorder", "deadletter"])
def test_merchants_cancel_from_the_hot_orders_and_the_dead_letters_with_a_message_per_order(
    admin_client, sale, listing
):
    refused, queued = order_accept_as_buyer(quantity=2), order_accept_as_buyer(quantity=1)
    reference_taken_by_another_body(refused)
    placement.order_dead_letter(order_id=refused.pk, error=REFUSED_FOR_GOOD)
    selected = [refused.pk, queued.pk] if listing == "hotorder" else [refused.dead_letters.get().pk]

    response = admin_client.post(
        f"/admin/orders/{listing}/", {"action": "cancel", "_selected_action": selected}, follow=True
    )

    said = [str(message) for message in get_messages(response.wsgi_request)]
    assert f"{refused.number}: cancelled; its 2 unit(s) released and nothing charged." in said
    if listing == "hotorder":
        assert f"{queued.number}: not cancelled: only a dead-lettered order can be cancelled" in " ".join(said)
    refused.refresh_from_db()
    assert refused.stage == OrderStage.CANCELLED
    assert HotOrder.objects.get(pk=queued.pk).stage == OrderStage.QUEUED
    assert refused.dead_letters.get().redriven_by.username == "admin"
    assert "cancelled, " in admin_client.get("/admin/orders/deadletter/").content.decode()


def test_the_admin_says_when_an_order_it_was_to_cancel_is_completed_after_all(admin_client, sale):
    order = order_accept_as_buyer(quantity=1)
    placed = placed_by_an_attempt_whose_answer_was_lost(order, sale)

    response = admin_client.post(
        "/admin/orders/hotorder/", {"action": "cancel", "_selected_action": [order.pk]}, follow=True
    )

    [said] = [str(message) for message in get_messages(response.wsgi_request)]
    assert said.startswith(f"{order.number}: not cancelled: the order backend had placed it after all")
    assert placed.data["number"] in said
    assert HotOrder.objects.get(pk=order.pk).stage == OrderStage.SENT_TO_FULFILMENT


@pytest.mark.parametrize("listing", ["hotorder", "deadletter"])
def test_staff_who_may_only_look_cannot_cancel(viewer, sale, listing):
    order = order_accept_as_buyer(quantity=2)
    placement.order_dead_letter(order_id=order.pk, error=REFUSED_FOR_GOOD)
    selected = order.pk if listing == "hotorder" else order.dead_letters.get().pk

    response = viewer.post(f"/admin/orders/{listing}/", {"action": "cancel", "_selected_action": [selected]})

    assert response.status_code == 403
    assert HotOrder.objects.get(pk=order.pk).stage == OrderStage.DEAD_LETTERED
