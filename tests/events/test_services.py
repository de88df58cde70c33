"""Appending to the log: the envelope, the checks that name the field, one INSERT that
records the writing transaction, and pruning that never outruns a consumer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Checkpoint, DeadLetter, Event
from events.selectors import pruned_mark
from events.services import EventInvalid, NotRetirable, checkpoint_retire, event_append, events_append, events_prune
from tests.events.conftest import assert_envelope_valid, sale_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_event_carries_the_lego_envelope_exactly(settings):
    settings.EVENT_ACCOUNT, settings.AWS_REGION, settings.EVENT_SITE_ID = "123456789012", "eu-central-1", "Fishing"
    event = sale_event(7)
    envelope = event.envelope()
    assert list(envelope) == [
        *("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
    ]
    assert envelope["version"] == "0"
    assert envelope["id"] == str(event.uuid)
    assert (envelope["detail-type"], envelope["source"]) == ("State change Notification", "shop.hotpath")
    assert (envelope["account"], envelope["region"]) == ("123456789012", "eu-central-1")
    assert envelope["time"].endswith("Z") and len(envelope["time"]) == len("2019-08-29T12:10:21Z")
    assert envelope["resources"] == ["arn:aws:events:eu-west-1:123456789012:event-bus/checkout-bus"]
    assert envelope["detail"] == {
        "event": {
            "meta_data": {
                "site_id": "Fishing",
                "type": "CHECKOUT",
                "subtype": "ORDER",
                "status": "ACCEPTED",
                "position": event.position,
                "trace_id": f"1-67a1b2c3-{7:024x}",
            },
            "data": {"order_number": "H000007", "quantity": 1},
        }
    }
    assert_envelope_valid(envelope)


def test_the_schema_refuses_a_renamed_or_missing_field():
    import jsonschema

    envelope = sale_event(1).envelope()
    renamed = {**envelope, "detail_type": envelope.pop("detail-type")}
    with pytest.raises(jsonschema.ValidationError):
        assert_envelope_valid(renamed)
    envelope = sale_event(2).envelope()
    del envelope["detail"]["event"]["meta_data"]["site_id"]
    with pytest.raises(jsonschema.ValidationError):
        assert_envelope_valid(envelope)


def test_appending_is_one_insert(django_assert_num_queries):
    with django_assert_num_queries(1):
        event = event_append(
            source="shop", detail_type="Basket", type="BASKET", subtype="ITEM", status="ADDED", data={"sku": "x"}
        )
    assert event.position and event.trace_id == ""
    assert event.envelope()["detail"]["event"]["meta_data"]["trace_id"] is None


@pytest.mark.postgres
def test_the_writing_transaction_id_is_recorded_on_postgres():
    with transaction.atomic():
        first = sale_event(1)
        second = sale_event(2)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text")
            current = int(cursor.fetchone()[0])
    later = sale_event(3)
    assert first.xid == second.xid == current
    assert later.xid > current
    assert Event.objects.get(position=first.position).xid == current


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", ""),
        ("detail_type", None),
        ("type", "x" * 65),
        ("status", 3),
        ("data", ["not", "an", "object"]),
        ("data", {"when": object()}),
        ("resources", "arn:aws:events:one-string"),
        ("resources", [""]),
        ("trace_id", 12),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(field, value):
    kwargs = {
        "source": "shop",
        "detail_type": "Basket",
        "type": "BASKET",
        "subtype": "ITEM",
        "status": "ADDED",
        "data": {},
        "resources": (),
        "trace_id": None,
    }
    kwargs[field] = value
    with pytest.raises(EventInvalid) as refused:
        event_append(**kwargs)
    assert refused.value.field == field
    assert not Event.objects.exists()


def test_several_events_are_one_insert_in_their_order_and_all_checked_before_any_is_written():
    basket = {"source": "shop", "detail_type": "Basket", "type": "BASKET", "subtype": "ITEM"}
    with CaptureQueriesContext(connection) as queries:
        added, removed = events_append(
            [{**basket, "status": "ADDED", "data": {}}, {**basket, "status": "REMOVED", "data": {}}]
        )
    # Outside a transaction its own BEGIN and COMMIT come with it.
    assert [q["sql"].split()[0] for q in queries if q["sql"].split()[0] not in ("BEGIN", "COMMIT")] == ["INSERT"]
    assert added.position < removed.position
    assert [e.status for e in Event.objects.order_by("position")] == ["ADDED", "REMOVED"]

    with pytest.raises(EventInvalid) as refused:
        events_append([{**basket, "status": "ADDED", "data": {}}, {**basket, "status": "", "data": {}}])
    assert refused.value.field == "status"
    with pytest.raises(TypeError, match="colour"):
        events_append([{**basket, "status": "ADDED", "data": {}, "colour": "red"}])
    assert Event.objects.count() == 2


def test_an_event_is_never_changed_once_written():
    event = sale_event(1)
    event.status = "COMPLETE"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    assert Event.objects.get(position=event.position).status == "ACCEPTED"


def test_an_event_exists_only_if_its_transaction_commits():
    with pytest.raises(RuntimeError), transaction.atomic():
        sale_event(1)
        raise RuntimeError("the change it records failed")
    assert not Event.objects.exists()


def _aged(days: int) -> None:
    Event.objects.update(time=timezone.now() - timedelta(days=days))


def test_prune_deletes_only_old_events_every_consumer_has_passed(settings):
    settings.EVENT_RETENTION_DAYS = 30
    settings.EVENT_CONSUMERS = {"fast": "tests.events.handlers.collect", "slow": "tests.events.handlers.collect"}
    old = [sale_event(n) for n in range(1, 5)]
    _aged(40)
    fresh = sale_event(5)
    Checkpoint.objects.create(consumer="fast", last_xid=fresh.xid or 0, last_position=fresh.position)
    Checkpoint.objects.create(consumer="slow", last_xid=old[1].xid or 0, last_position=old[1].position)

    assert events_prune() == 2
    assert list(Event.objects.order_by("position").values_list("position", flat=True)) == [
        old[2].position,
        old[3].position,
        fresh.position,
    ]


def test_prune_keeps_everything_for_a_consumer_that_never_ran(settings):
    settings.EVENT_RETENTION_DAYS = 1
    settings.EVENT_CONSUMERS = {"new": "tests.events.handlers.collect"}
    sale_event(1)
    _aged(10)
    assert events_prune() == 0
    assert Event.objects.count() == 1


def test_prune_keeps_an_event_a_dead_letter_points_at(settings):
    settings.EVENT_RETENTION_DAYS = 1
    settings.EVENT_CONSUMERS = {}
    kept, gone = sale_event(1), sale_event(2)
    DeadLetter.objects.create(consumer="gone", event=kept, error="boom", attempts=5)
    _aged(10)
    assert events_prune() == 1
    assert list(Event.objects.values_list("position", flat=True)) == [kept.position]
    assert not Event.objects.filter(position=gone.position).exists()


def test_prune_waits_for_every_consumer_with_a_checkpoint_whether_registered_here_or_not(settings):
    settings.EVENT_RETENTION_DAYS = 1
    # The relay runs in a process of its own: the pruning process does not register it.
    settings.EVENT_CONSUMERS = {"fast": "tests.events.handlers.collect"}
    events = [sale_event(n) for n in range(1, 5)]
    _aged(10)
    Checkpoint.objects.create(consumer="fast", last_xid=events[3].xid or 0, last_position=events[3].position)
    Checkpoint.objects.create(consumer="relay", last_xid=events[1].xid or 0, last_position=events[1].position)

    assert events_prune() == 2
    assert list(Event.objects.order_by("position").values_list("position", flat=True)) == [
        events[2].position,
        events[3].position,
    ]

    # Retired, it is waited for no more.
    checkpoint_retire(consumer="relay")
    assert events_prune() == 2
    assert not Event.objects.exists()


def test_prune_records_the_last_event_it_deleted(settings):
    settings.EVENT_RETENTION_DAYS = 1
    settings.EVENT_CONSUMERS = {}
    assert pruned_mark() == (0, 0)
    gone = [sale_event(1), sale_event(2)]
    _aged(10)
    sale_event(3)
    assert events_prune() == 2
    assert pruned_mark() == ((gone[1].xid or 0), gone[1].position)
    assert events_prune() == 0
    assert pruned_mark() == ((gone[1].xid or 0), gone[1].position), "a prune that deletes nothing moves nothing"


@pytest.mark.parametrize(
    ("consumer", "reason"),
    [
        ("collect", "registered in EVENT_CONSUMERS here"),
        ("tallies", "is a read model"),
        ("gone", "no consumer 'gone' has a checkpoint"),
    ],
)
def test_retiring_refuses_a_consumer_registered_here_a_read_model_or_an_unknown_one(settings, consumer, reason):
    settings.EVENT_CONSUMERS = {"collect": "tests.events.handlers.collect"}
    Checkpoint.objects.create(consumer="collect")
    Checkpoint.objects.create(consumer="tallies")
    with pytest.raises(NotRetirable, match=reason):
        checkpoint_retire(consumer=consumer)
    assert Checkpoint.objects.count() == 2
