"""The log's list in the admin, with a log of thousands of events: an event named by its id
is found through the id's index, and no page counts the whole log beside its own rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EVENTS = 4000


@pytest.fixture
def log(db) -> list[Event]:
    events = Event.objects.bulk_create(
        Event(
            source="shop.hotpath",
            detail_type="State change Notification",
            type="CHECKOUT",
            subtype="ORDER",
            status="ACCEPTED",
            data={"number": f"T{n:06d}"},
            trace_id=f"1-{n:08x}-{n:024x}",
        )
        for n in range(EVENTS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
    return events


def sent_on_events(admin_client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as sent:
        response = admin_client.get(path)
    assert response.status_code == 200
    return [query["sql"] for query in sent.captured_queries if 'FROM "events_event"' in query["sql"]]


def test_an_event_searched_by_its_id_is_read_through_the_ids_index(admin_client, log):
    event = log[1234]

    queries = sent_on_events(admin_client, f"/admin/events/event/?q={event.uuid}")

    searched = [sql for sql in queries if str(event.uuid).replace("-", "") in sql.replace("-", "")]
    assert searched
    with connection.cursor() as cursor:
        for sql in searched:
            cursor.execute("EXPLAIN " + sql)
            plan = "\\n".join(row[0] for row in cursor.fetchall())
            assert "events_event_uuid_key" in plan and "Seq Scan" not in plan, plan


def test_an_event_searched_by_its_id_is_listed_alone(admin_client, log):
    event = log[7]

    html = admin_client.get(f"/admin/events/event/?q={event.uuid}").content.decode()

    assert f'href="/admin/events/event/{event.position}/change/' in html
    assert f'href="/admin/events/event/{log[8].position}/change/' not in html


def test_a_filtered_page_does_not_count_the_whole_log(admin_client, log):
    queries = sent_on_events(admin_client, "/admin/events/event/?q=shop.hotpath")

    counts = [sql for sql in queries if "COUNT(" in sql]
    assert counts and all("WHERE" in sql for sql in counts), counts
