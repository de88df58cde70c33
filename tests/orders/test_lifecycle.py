"""The hot order's state machine (orders.lifecycle): the table of transitions is the only way an
order moves, every move writes its history and its event with it, and every event fits the
log's envelope."""

import json
import signal
import uuid
from pathlib import Path

import jsonschema
import pytest

from events.models import Event
from orders import dead_letters, lifecycle, placement, sweeps
from orders.lifecycle import TRANSITIONS, TransitionRefused, order_transition
from orders.models import HotOrder, OrderStage, OrderStageEvent, SaleAllocation
from tests.conftest import eventually
from tests.orders.conftest import (
    APPROVED_CARD,
    DECLINED_CARD,
    order_accept_as_buyer,
    order_body,
    order_claimed,
    orders_final,
)
from tests.orders.test_concurrency import post_all_at_once

ENVELOPE_SCHEMA = json.loads((Path(__file__).parents[2] / "events/schema/envelope.schema.json").read_text())

FORBIDDEN = [
    (from_stage, to)
    for from_stage in OrderStage.values
    for to in OrderStage.values
    if to not in TRANSITIONS[from_stage]
]


def hot_events(order: HotOrder) -> list[Event]:
    return list(Event.objects.filter(source=lifecycle.SOURCE, resources=[order.number]).order_by("position"))


def assert_envelopes_valid(events) -> None:
    for event in events:
        jsonschema.validate(event.envelope(), ENVELOPE_SCHEMA)


def test_every_stage_has_a_row_in_the_table_and_only_known_targets():
    assert set(TRANSITIONS) == set(OrderStage.values)
    assert all(set(targets) <= set(OrderStage.values) for targets in TRANSITIONS.values())
    # A complete order is the end: nothing follows it.
    assert TRANSITIONS[OrderStage.SENT_TO_FULFILMENT] == frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize(("from_stage", "to"), FORBIDDEN)
def test_every_forbidden_transition_is_refused_and_writes_nothing(allocation, from_stage, to):
    order = order_accept_as_buyer()
    # The setup puts the order at each stage directly: the table is what is under test.
    HotOrder.objects.filter(pk=order.pk).update(stage=from_stage)
    order = HotOrder.objects.select_related("product").get(pk=order.pk)
    before = (HotOrder.objects.values().get(pk=order.pk), OrderStageEvent.objects.count(), Event.objects.count())
    allocation.refresh_from_db()
    units = (allocation.reserved, allocation.sold)

    with pytest.raises(TransitionRefused):
        order_transition(order, to=to, detail="not allowed")

    after = (HotOrder.objects.values().get(pk=order.pk), OrderStageEvent.objects.count(), Event.objects.count())
    allocation.refresh_from_db()
    assert after == before
    assert (allocation.reserved, allocation.sold) == units


@pytest.mark.django_db
def test_a_completed_order_has_one_history_row_and_one_event_per_move(allocation):
    order = order_accept_as_buyer(quantity=2)
    order_claimed(order.pk)
    placement.order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    placement.order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")

    order.refresh_from_db()
    stages = ["queued", "validating", "payment_authorised", "sent_to_fulfilment"]
    assert list(order.history.values_list("stage", flat=True)) == stages
    events = hot_events(order)
    assert [e.status for e in events] == ["ACCEPTED", "VALIDATING", "PAYMENT_AUTHORISED", "COMPLETE"]
    assert [e.data["stage"] for e in events] == stages
    assert [e.data["from_stage"] for e in events] == [None, *stages[:-1]]
    assert {(e.type, e.subtype) for e in events} == {("CHECKOUT", "ORDER")}
    last = events[-1].data
    assert last["legacy_number"] == "L00000007"
    assert (last["product"], last["quantity"], last["total_cents"]) == ("muskie-casting-rod", 2, 2 * 14999)
    assert_envelopes_valid(events)


@pytest.mark.django_db
def test_a_completion_passes_through_its_authorisation_in_one_write(allocation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order = order_accept_as_buyer(quantity=2)
    order_claimed(order.pk)
    with CaptureQueriesContext(connection) as queries:
        placement.order_complete(order_id=order.pk, legacy_order_id=8, legacy_number="L00000008")
    writes = [
        q["sql"].split("(")[0].split(" SET ")[0].strip() for q in queries if q["sql"].startswith(("INSERT", "UPDATE"))
    ]
    tables = sorted(w.split()[-1].strip('"') for w in writes)
    # The order once, its two history rows in one INSERT, its two events in one, the allocation
    # once, and the buyer's confirmation email to be sent once this commits.
    assert tables == [
        "events_event",
        "orders_hotorder",
        "orders_orderstageevent",
        "orders_saleallocation",
        "shop_orderemail",
    ], writes

    events = hot_events(order)[-2:]
    assert [e.status for e in events] == ["PAYMENT_AUTHORISED", "COMPLETE"]
    assert [(e.data["reserved_delta"], e.data["sold_delta"]) for e in events] == [(0, 0), (-2, 2)]
    assert events[0].position < events[1].position
    assert list(order.history.values_list("stage", flat=True))[-2:] == ["payment_authorised", "sent_to_fulfilment"]
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (0, 2)


@pytest.mark.django_db
def test_a_move_through_a_stage_the_table_refuses_writes_nothing(allocation):
    order = order_accept_as_buyer()
    order_claimed(order.pk)
    order = HotOrder.objects.select_related("product").get(pk=order.pk)
    before = (HotOrder.objects.values().get(pk=order.pk), OrderStageEvent.objects.count(), Event.objects.count())

    with pytest.raises(TransitionRefused) as refused:
        # payment_authorised may follow validating, but queued may not follow payment_authorised
        order_transition(order, via=[(OrderStage.PAYMENT_AUTHORISED, "approved")], to=OrderStage.QUEUED)
    assert (refused.value.from_stage, refused.value.to_stage) == (OrderStage.PAYMENT_AUTHORISED, OrderStage.QUEUED)
    assert order.stage == OrderStage.VALIDATING

    after = (HotOrder.objects.values().get(pk=order.pk), OrderStageEvent.objects.count(), Event.objects.count())
    assert after == before


@pytest.mark.django_db
def test_no_event_carries_card_data(allocation):
    order = order_accept_as_buyer(card="4000000000000002")
    order_claimed(order.pk)
    placement.order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED, detail="declined")
    text = json.dumps([e.envelope() for e in hot_events(order)])
    assert (
        "4000000000000002" not in text
        and "0002" not in text
        and "card" not in json.dumps([sorted(e.data) for e in hot_events(order)])
    )


@pytest.mark.django_db
def test_dead_letter_redrive_and_expiry_go_through_the_table(allocation, settings):
    order = order_accept_as_buyer()
    placement.order_dead_letter(order_id=order.pk, error="legacy API answered 503")
    assert dead_letters.order_redrive(order_id=order.pk) is True
    # Redriven and never taken again: the sweep expires it once nobody works on the queue.
    settings.ORDERS_STALL_SECONDS = 0
    HotOrder.objects.filter(pk=order.pk).update(reserved_until="2000-01-01T00:00Z", attempts=0)
    assert sweeps.reservations_expire() == 1

    order.refresh_from_db()
    assert (order.status, order.stage, order.reservation, order.card_sealed) == ("failed", "expired", "released", "")
    events = hot_events(order)
    assert [e.status for e in events] == ["ACCEPTED", "DEAD_LETTERED", "REDRIVEN", "FAILED"]
    assert events[-1].data["stage"] == "expired"
    assert_envelopes_valid(events)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_stampede_through_a_killed_worker_logs_each_order_once_from_acceptance_to_its_end(
    processes, live_server, product, allocation, legacy_api, legacy_env, worker_env
):
    """Buyers at once, more than the allocation, some with a declined card; the first worker is
    killed while it is at the legacy API and a second one finishes. Every accepted order has
    one ACCEPTED event, then one event per stage its history shows, ending in one COMPLETE or
    FAILED: no gap, no duplicate, none for a refused buyer."""
    SaleAllocation.objects.filter(pk=allocation.pk).update(allocated=8)
    # About a second per order at the legacy API, so the kill lands while orders are there.
    legacy_api.env = {**legacy_env, "LEGACY_ARGON2_TIME_COST": "6", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    legacy_api.start()
    # Half the cards declined: whichever 8 of the 12 win, at least 2 of each kind are accepted.
    buyers = [(uuid.uuid4().hex, order_body(card=DECLINED_CARD if i % 2 == 0 else APPROVED_CARD)) for i in range(12)]
    answers = post_all_at_once(live_server.url, buyers)
    assert sorted(status for status, _ in answers) == [202] * 8 + [409] * 4

    env = {**worker_env, "ORDERS_VISIBILITY_TIMEOUT": "5", "ORDERS_UNACKED_RESTORE_SECONDS": "1"}
    env["LEGACY_API_TIMEOUT"] = "3"
    # The killed worker's permits last the call's timeout and 7 s (10 s), its order claims the
    # permit wait as well (11 s): both short. The timeout is still many times a call here.
    env["ORDERS_SLOT_WAIT_SECONDS"] = "1"
    first = processes.celery_worker(env, concurrency=2, name="worker-1")
    eventually(
        lambda: HotOrder.objects.filter(stage="validating").exists(),
        timeout=60,
        interval=0.05,
        message="the worker never took an order",
    )
    processes.stop(first, sig=signal.SIGKILL)
    assert HotOrder.objects.filter(status="processing").exists(), "the kill came after every order was done"
    processes.celery_worker(env, concurrency=2, name="worker-2")
    eventually(orders_final(8), timeout=150, message="the orders of the killed worker were not finished")

    orders = list(HotOrder.objects.all())
    assert len(orders) == 8
    assert Event.objects.filter(source=lifecycle.SOURCE, status="ACCEPTED").count() == 8
    for order in orders:
        events = hot_events(order)
        statuses = [e.status for e in events]
        assert statuses[0] == "ACCEPTED" and statuses.count("ACCEPTED") == 1, (order.number, statuses)
        terminal = [s for s in statuses if s in ("COMPLETE", "FAILED")]
        assert terminal == [statuses[-1]], (order.number, statuses)
        assert statuses[-1] == ("COMPLETE" if order.status == "complete" else "FAILED")
        assert [e.data["stage"] for e in events] == list(order.history.values_list("stage", flat=True))
        for before, after in zip(events, events[1:], strict=False):
            assert after.data["from_stage"] == before.data["stage"], (order.number, statuses)
    declined = [o for o in orders if o.card_last4 == DECLINED_CARD[-4:]]
    assert len(declined) >= 2 and {o.stage for o in declined} == {"card_declined"}
    assert {o.status for o in orders if o not in declined} == {"complete"}
    assert_envelopes_valid(Event.objects.filter(source=lifecycle.SOURCE))
