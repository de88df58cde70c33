"""Upgrading the log's tables: between `migrate` and the last old worker's restart (a rolling
deploy), the previous release's code still runs on the new schema, and its inserts must not be
refused; a log it pruned (it recorded nothing) must not be rebuilt from its start."""

from __future__ import annotations

import contextlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from events.models import Snapshot
from readmodels.selectors import sales_totals
from tests.conftest import migrate_to
from tests.readmodels.conftest import catch_up, place

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

BEFORE = [("events", "0002_snapshots")]
AFTER = [("events", "0004_checkpoint_lease")]


def _previous_release_models():
    """The events models as the previous release (at 0002) has them, on the migrated schema."""
    executor = migrate_to(AFTER)
    return executor.loader.project_state(BEFORE).apps


def test_the_previous_release_can_still_dead_letter_an_event_after_the_migration():
    old = _previous_release_models()
    OldEvent = old.get_model("events", "Event")
    OldDeadLetter = old.get_model("events", "DeadLetter")
    event = OldEvent.objects.create(
        source="legacy.orders", detail_type="x", type="ORDER", subtype="RECORD", status="PLACED", data={}
    )
    OldDeadLetter.objects.create(consumer="tallies", event=event, error="boom", attempts=5)


def test_the_previous_release_can_still_create_a_checkpoint_after_the_migration():
    old = _previous_release_models()
    OldCheckpoint = old.get_model("events", "Checkpoint")
    OldCheckpoint.objects.create(consumer="a-new-consumer", last_xid=0, last_position=0)


def test_a_log_pruned_before_the_upgrade_is_not_rebuilt_from_its_start(catalogue):
    place("muskie-casting-rod", 2)
    place("spinning-reel", 3)
    catch_up()
    call_command("events", "snapshot", stdout=StringIO())
    live = sales_totals()
    assert live["orders"] == 2

    # The previous release: pruning deletes what every consumer and every view's latest
    # snapshot passed, and records nothing.
    migrate_to(BEFORE)
    upto = min(Snapshot.objects.values_list("last_position", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE position <= %s", [upto])
        assert cursor.rowcount > 0
    migrate_to(AFTER)  # the upgrade

    out = StringIO()
    # Starting from the snapshot, or refusing (the log is pruned), keeps the sales; nothing loses them.
    with contextlib.suppress(CommandError):
        call_command("events", "rebuild", "sales_per_minute", stdout=out)
    assert sales_totals() == live, out.getvalue()
