"""Rebuilding the read models once the log was pruned, and beside their dead letters: a rebuild
never swaps in a view that misses events the live one holds, and never counts an event twice."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from events.consumers import consumer_run_all
from events.dead_letters import dead_letter_redrive
from events.models import DeadLetter, Event, Snapshot
from events.services import events_prune
from events.snapshots import view_get
from readmodels.models import Generation, Tally
from readmodels.sales import TalliesView
from readmodels.selectors import sales_totals
from tests.readmodels.conftest import catch_up, place, settled

pytestmark = pytest.mark.django_db(transaction=True)

LAKESHORE = "supplier|Lakeshore Reel Works"


def _state(name: str) -> dict:
    return view_get(name).state()


def _pruned_after_snapshots(settings) -> None:
    """What beat does hourly once the events are past their retention: snapshots, then prune."""
    settings.EVENT_RETENTION_DAYS = 1
    Event.objects.update(time=timezone.now() - timedelta(days=3))
    call_command("events", "snapshot", stdout=StringIO())
    assert events_prune() > 0


def _rebuild(*args: str) -> str:
    out = StringIO()
    call_command("events", "rebuild", *args, stdout=out)
    return out.getvalue()


def _failing_on(monkeypatch, reference: str) -> None:
    """The tallies fail on the order placed with this reference (a bug, a database hiccup)."""
    real = TalliesView.apply

    def apply(self, event, generation):
        if event.data.get("reference") == reference:
            raise RuntimeError("tallies down")
        return real(self, event, generation)

    monkeypatch.setattr(TalliesView, "apply", apply)


def test_a_rebuild_from_the_start_once_the_log_was_pruned_starts_from_the_snapshot_and_keeps_the_pruned_sales(
    catalogue, settings
):
    place("muskie-casting-rod", 2)
    place("spinning-reel", 3)
    catch_up()
    _pruned_after_snapshots(settings)
    place("spinning-reel", 1)
    catch_up()
    live = sales_totals()
    assert live["orders"] == 3

    said = _rebuild("sales_per_minute")

    assert "rebuilt from its snapshot at position" in said and "the log is pruned before it" in said
    assert sales_totals() == live


def test_rebuild_check_once_the_log_was_pruned_finds_the_healthy_views_in_step(catalogue, settings):
    place("muskie-casting-rod", 2)
    catch_up()
    _pruned_after_snapshots(settings)
    place("spinning-reel", 1)
    catch_up()

    said = _rebuild("--check")

    assert said.count("in step") == 3, said


def test_rebuild_check_counts_one_wrong_view_and_its_one_difference_in_the_singular(catalogue):
    place("spinning-reel", 2)
    catch_up()
    Tally.objects.filter(kind="supplier", key="Lakeshore Reel Works").update(units=99)

    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("events", "rebuild", "--check", "tallies", stdout=out)
    assert str(refused.value) == "1 view differs from a rebuild."
    assert out.getvalue().startswith("tallies: 1 difference\n")


def test_a_rebuild_once_the_log_was_pruned_past_every_snapshot_of_the_view_is_refused_and_swaps_nothing(
    catalogue, settings
):
    place("spinning-reel", 2)
    catch_up()
    _pruned_after_snapshots(settings)
    Snapshot.objects.filter(view="tallies").delete()
    live, generation = _state("tallies"), Generation.objects.get(view="tallies").live

    for args in (("tallies",), ("tallies", "--from-snapshot"), ("--check", "tallies")):
        with pytest.raises(CommandError, match=r"pruned up to position \d+ .* --from-snapshot or not"):
            _rebuild(*args)

    assert _state("tallies") == live
    assert Generation.objects.get(view="tallies").live == generation
    assert set(Tally.objects.values_list("generation", flat=True)) == {generation}


def _tallies_dead_lettered(settings, monkeypatch) -> None:
    """Two reels placed and folded in, then three more whose event the tallies dead-letter."""
    settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    place("spinning-reel", 2)
    catch_up()
    _failing_on(monkeypatch, place("spinning-reel", 3).reference)
    catch_up("inventory", "sales_per_minute", "reorders")
    settled()
    assert consumer_run_all(consumer="tallies").dead_lettered == 1


def test_a_dead_letter_whose_event_a_rebuild_folded_in_is_settled_and_a_redrive_does_not_count_it_again(
    catalogue, settings, monkeypatch
):
    _tallies_dead_lettered(settings, monkeypatch)
    assert _state("tallies")[LAKESHORE]["units"] == 2
    monkeypatch.undo()  # the cause fixed

    said = _rebuild("tallies")

    assert "1 dead letter settled" in said
    assert _state("tallies")[LAKESHORE]["units"] == 5
    letter = DeadLetter.objects.get(consumer="tallies")
    assert letter.redriven_at is not None and "rebuild of tallies" in letter.resolution
    assert dead_letter_redrive(dead_letter_id=letter.pk) is False
    assert _state("tallies")[LAKESHORE]["units"] == 5


def test_a_rebuild_leaves_out_an_event_still_dead_lettered_and_its_redrive_counts_it_once(
    catalogue, settings, monkeypatch
):
    _tallies_dead_lettered(settings, monkeypatch)
    letter = DeadLetter.objects.get(consumer="tallies")

    said = _rebuild("tallies")  # the cause not fixed yet: the rebuild fails on it too

    assert f"left out events [{letter.event_id}], still open dead letters" in said
    assert _state("tallies")[LAKESHORE]["units"] == 2
    monkeypatch.undo()
    assert dead_letter_redrive(dead_letter_id=letter.pk) is True
    assert _state("tallies")[LAKESHORE]["units"] == 5
    _rebuild("--check", "tallies")


def test_a_rebuild_that_fails_on_an_event_the_live_view_holds_swaps_nothing_and_says_so(catalogue, monkeypatch):
    place("spinning-reel", 2)
    failing = place("spinning-reel", 3)
    catch_up()
    live, generation = _state("tallies"), Generation.objects.get(view="tallies").live
    _failing_on(monkeypatch, failing.reference)

    with pytest.raises(CommandError, match=r"tallies: not swapped in: the rebuild failed to fold in events \[\d+\]"):
        _rebuild("tallies")

    assert _state("tallies") == live
    assert Generation.objects.get(view="tallies").live == generation
    assert set(Tally.objects.values_list("generation", flat=True)) == {generation}


def test_rebuild_check_beside_an_open_dead_letter_logs_the_skipped_event_in_one_line_with_its_reason(
    catalogue, settings, monkeypatch, caplog
):
    _tallies_dead_lettered(settings, monkeypatch)
    letter = DeadLetter.objects.get(consumer="tallies")
    caplog.clear()

    with caplog.at_level("INFO", logger="events.snapshots"):
        _rebuild("--check", "tallies")

    [said] = [r for r in caplog.records if r.name == "events.snapshots" and r.levelname == "WARNING"]
    assert said.getMessage() == f"view rebuild skipped event {letter.event_id}: RuntimeError: tallies down"
    assert not said.exc_info
