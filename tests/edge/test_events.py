"""Route changes in the unified log: add, enable, disable, remove and rollback each write one
ROUTE event from shop.edge with its audit entry, in the same transaction (a refused or
rolled-back change writes none), in the LEGO envelope."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from edge import services
from edge.models import Route, RouteAudit
from events.models import Event
from tests.edge.conftest import ensure_origins

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "events/schema/envelope.schema.json").read_text())
PATTERN = "/shop/rods/muskie-casting-rod/*"


@pytest.fixture(autouse=True)
def _every_event_fits_the_envelope(request):
    marker = request.node.get_closest_marker("django_db")
    request.getfixturevalue("transactional_db" if marker and marker.kwargs.get("transaction") else "db")
    ensure_origins()
    yield
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in Event.objects.all():
        validator.validate(event.envelope())


def run(*args: str) -> str:
    out = StringIO()
    call_command("edge_route", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def route_events() -> list[Event]:
    return list(Event.objects.filter(type="ROUTE").order_by("position"))


pytestmark = pytest.mark.django_db


def test_add_enable_disable_remove_and_rollback_each_write_one_route_event():
    run("add", "muskie", PATTERN, "--origin", "hotpath")
    run("enable", "muskie")
    run("disable", "muskie")
    run("remove", "muskie")
    services.route_restore(actor="merchant", audit=RouteAudit.objects.get(action="delete"))

    logged = route_events()
    assert [e.status for e in logged] == ["ADDED", "ENABLED", "DISABLED", "REMOVED", "ROLLED_BACK"]
    assert {(e.source, e.type, e.subtype) for e in logged} == {("shop.edge", "ROUTE", "ROUTE")}
    audits = list(RouteAudit.objects.order_by("pk"))
    assert [e.data["audit"] for e in logged] == [a.pk for a in audits]
    assert [(e.data["before"], e.data["after"]) for e in logged] == [(a.before, a.after) for a in audits]
    assert logged[0].data["after"]["pattern"] == PATTERN
    assert (logged[1].data["before"]["enabled"], logged[1].data["after"]["enabled"]) == (False, True)
    assert logged[3].data["after"] is None
    assert logged[4].data["actor"] == "merchant" and logged[4].data["after"]["name"] == "muskie"
    assert all(e.data["route"] == "muskie" for e in logged)


def test_an_edit_of_other_fields_is_logged_as_updated():
    route, _ = services.route_create(actor="merchant", name="muskie", pattern=PATTERN, origin="hotpath")
    route.canary_percent = 10
    services.route_save(actor="merchant", route=route)

    assert [e.status for e in route_events()] == ["ADDED", "UPDATED"]
    assert route_events()[1].data["after"]["canary_percent"] == 10


def test_a_save_that_changes_nothing_writes_no_event():
    route, _ = services.route_create(actor="merchant", name="muskie", pattern=PATTERN, origin="hotpath")
    services.route_save(actor="merchant", route=Route.objects.get(pk=route.pk))

    assert [e.status for e in route_events()] == ["ADDED"]


def test_a_refused_change_writes_no_event():
    with pytest.raises(CommandError):
        run("add", "bad", "/shop/<x>/*", "--origin", "hotpath")
    run("add", "muskie", PATTERN, "--origin", "hotpath", "--dry-run")

    assert Event.objects.count() == 0
    assert not Route.objects.exists()


def test_a_rolled_back_change_writes_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        services.route_create(actor="merchant", name="muskie", pattern=PATTERN, origin="hotpath", enabled=True)
        assert len(route_events()) == 1
        raise RuntimeError("the caller's transaction fails after the change")

    assert Event.objects.count() == 0
    assert not Route.objects.exists() and not RouteAudit.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_each_route_event_is_written_in_its_changes_transaction():
    route, _ = services.route_create(actor="merchant", name="muskie", pattern=PATTERN, origin="hotpath")
    services.route_set_enabled(actor="merchant", route=route, enabled=True)
    services.route_delete(actor="merchant", route=Route.objects.get(pk=route.pk))

    xids = [e.xid for e in route_events()]
    assert len(xids) == 3 and None not in xids
    # Three changes committed apart, each with its own event: three transactions.
    assert len(set(xids)) == 3
