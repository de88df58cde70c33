"""`manage.py sale`: open (with its edge route), status, close and reconcile against the real
legacy API; every bad input is one line and a non-zero exit, with nothing held."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orders import placement
from orders.models import SaleAllocation, SaleState
from shop.models import Product
from tests.conftest import PYTHON, ROOT
from tests.orders.conftest import order_accept_as_buyer
from tests.orders.sale_support import hold_quantity, legacy_serve, stock

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def legacy(settings, live_server, transactional_db) -> str:
    # The origins the edge's data migration creates: a transactional test's flush removes them.
    importlib.import_module("edge.migrations.0002_default_origins").create_origins(apps, None)
    return legacy_serve(settings, live_server)


def sale(*args: str) -> str:
    out = StringIO()
    call_command("sale", *args, stdout=out)
    return out.getvalue()


def route(name: str):
    return apps.get_model("edge", "Route").objects.filter(name=name).first()


def test_open_with_route_holds_the_units_and_sends_the_product_to_the_hot_path(product):
    output = sale("open", "muskie-casting-rod", "--units", "40", "--per-order", "3", "--route")

    allocation = SaleAllocation.objects.get()
    assert "Sale of muskie-casting-rod open: 40 units held" in output
    assert (allocation.state, allocation.is_hot, allocation.allocated, allocation.per_order_limit) == (
        SaleState.OPEN,
        True,
        40,
        3,
    )
    assert hold_quantity(allocation.hold_reference) == 40 and stock().available == 60
    muskie = route("muskie-casting-rod-sale")
    assert muskie.enabled and muskie.pattern == "/shop/rods/muskie-casting-rod/*"
    assert muskie.origin.name == "hotpath"


def test_open_of_one_unit_says_unit_not_units(product):
    output = sale("open", "muskie-casting-rod", "--units", "1")

    assert "Sale of muskie-casting-rod open: 1 unit held as sale-" in output and "1 per order." in output


def test_close_releases_what_was_not_sold_and_disables_the_route(product):
    sale("open", "muskie-casting-rod", "--units", "40", "--route")

    output = sale("close", "muskie-casting-rod")

    allocation = SaleAllocation.objects.get()
    assert "closed: 0 sold, the rest released" in output
    assert (
        "Route muskie-casting-rod-sale switched off: /shop/rods/muskie-casting-rod/ goes to the storefront again."
        in output
    )
    assert (allocation.state, allocation.is_hot) == (SaleState.CLOSED, False)
    assert (stock().held, stock().available, stock().on_hand) == (0, 100, 100)
    assert not route("muskie-casting-rod-sale").enabled


def test_close_switches_off_a_route_that_sends_only_the_products_orders_to_the_hot_path(product):
    """The hot path takes a product's buy-now orders as well as its page: a route for those
    alone, left on, answered every buy-now of the product 404 `not_hot` once its sale closed."""
    sale("open", "muskie-casting-rod", "--units", "40", "--route")
    call_command("edge_route", "add", "muskie-api", "/shop/rods/*/orders", "--origin", "hotpath", "--enable")

    output = sale("close", "muskie-casting-rod")

    assert "Route muskie-api switched off" in output
    assert not route("muskie-api").enabled and not route("muskie-casting-rod-sale").enabled


def test_close_leaves_on_a_route_that_still_sends_another_open_sale_to_the_hot_path(product):
    """Two sales under one category's route: closing the first switched the route off, and the
    other sale's rush landed on the storefront. It stays on until the last of them closes, and
    the merchant is told what the closed product's page does meanwhile."""
    Product.objects.create(
        category=product.category, title="Tourney Casting Rod", slug="tourney-casting-rod", price_cents=9999, stock=50
    )
    sale("open", "muskie-casting-rod", "--units", "10")
    sale("open", "tourney-casting-rod", "--units", "5")
    call_command("edge_route", "add", "rods-all", "/shop/rods/*", "--origin", "hotpath", "--enable", stdout=StringIO())

    output = sale("close", "muskie-casting-rod")

    assert "Route rods-all left on: it also sends the open sale of tourney-casting-rod to the hot path." in output
    assert "edge_route add muskie-casting-rod-storefront '/shop/rods/muskie-casting-rod/*'" in output
    assert route("rods-all").enabled

    output = sale("close", "tourney-casting-rod")

    assert "Route rods-all switched off: /shop/rods/tourney-casting-rod/ goes to the storefront again." in output
    assert not route("rods-all").enabled


def test_open_again_enables_the_existing_route(product):
    sale("open", "muskie-casting-rod", "--units", "5", "--route")
    sale("close", "muskie-casting-rod")

    sale("open", "muskie-casting-rod", "--units", "5", "--route")

    assert route("muskie-casting-rod-sale").enabled
    assert apps.get_model("edge", "Route").objects.count() == 1


def test_the_same_open_again_finishes_a_route_the_first_never_added(product):
    """A merchant's `sale open --route` stopped after the opening (a closed terminal, a broken
    pipe): the same command again adds the route, holding nothing more. Other terms are still
    refused, and so is the same opening without `--route`, which would change nothing."""
    sale("open", "muskie-casting-rod", "--units", "40", "--per-order", "3")
    reference = SaleAllocation.objects.get().hold_reference

    output = sale("open", "muskie-casting-rod", "--units", "40", "--per-order", "3", "--route")

    assert "already open with these terms" in output
    assert route("muskie-casting-rod-sale").enabled
    assert SaleAllocation.objects.get().hold_reference == reference
    assert hold_quantity(reference) == 40 and stock().held == 40
    for other in (("--units", "41", "--route"), ("--units", "40", "--per-order", "2", "--route"), ("--units", "40")):
        with pytest.raises(CommandError, match="already open"):
            sale("open", "muskie-casting-rod", *other)
    assert stock().held == 40


def test_status_as_json_shows_the_sale_and_the_stock_of_record(product):
    sale("open", "muskie-casting-rod", "--units", "10")
    order_accept_as_buyer(quantity=2)

    figures = json.loads(sale("status", "muskie-casting-rod", "--json"))

    assert {k: figures[k] for k in ("allocated", "reserved", "sold", "remaining", "hold")} == {
        "allocated": 10,
        "reserved": 2,
        "sold": 0,
        "remaining": 8,
        "hold": 10,
    }
    assert (figures["on_hand"], figures["held"], figures["available"]) == (100, 10, 90)
    assert "muskie-casting-rod: open, allocated 10, reserved 2" in sale("status")


def test_status_of_a_product_never_on_sale_says_no_sale_not_draft(product):
    """A product with no sale was shown as a draft of 0 units: a sale that does not exist."""
    figures = json.loads(sale("status", "muskie-casting-rod", "--json"))

    assert figures["state"] is None
    assert [figures[k] for k in ("allocated", "reserved", "sold", "remaining", "hold", "hold_reference")] == [None] * 6
    # The same keys as a sale's, for scripts: a KeyError on `starts_at` otherwise.
    assert (figures["is_hot"], figures["starts_at"], figures["ends_at"]) == (None, None, None)
    assert (figures["on_hand"], figures["available"]) == (100, 100)
    assert sale("status", "muskie-casting-rod") == (
        "muskie-casting-rod: no sale; stock on hand 100, held 0, available 100\n"
    )
    assert sale("status") == "No sales.\n"


def test_status_of_a_sale_never_opened_says_draft_and_no_hold(product):
    SaleAllocation.objects.create(product=product, allocated=5, per_order_limit=2)

    figures = json.loads(sale("status", "muskie-casting-rod", "--json"))

    assert (figures["state"], figures["allocated"], figures["hold"], figures["hold_reference"]) == (
        "draft",
        5,
        None,
        "",
    )
    assert sale("status", "muskie-casting-rod").startswith(
        "muskie-casting-rod: draft, allocated 5, reserved 0, sold 0, remaining 5, no hold; stock on hand 100"
    )


def test_reconcile_reports_each_open_sale(product):
    sale("open", "muskie-casting-rod", "--units", "10")

    (check,) = json.loads(sale("reconcile", "--json"))

    assert (check["product"], check["owed"], check["hold"], check["drift"], check["action"]) == (
        "muskie-casting-rod",
        10,
        10,
        0,
        "in step",
    )
    assert "muskie-casting-rod: owed 10, hold 10, drift +0" in sale("reconcile", "muskie-casting-rod")


def test_reconcile_of_a_product_without_an_open_sale_says_so_and_exits_0(product):
    """Reconciling nothing is no failure, but "No open sales." for the one product asked about
    read as every sale found in step; it names the product and what its sale is."""
    assert sale("reconcile", "muskie-casting-rod") == "No sale of muskie-casting-rod: no hold to reconcile.\n"
    SaleAllocation.objects.create(product=product, allocated=5, per_order_limit=2)
    assert sale("reconcile", "muskie-casting-rod") == (
        "The sale of muskie-casting-rod is not opened: no hold to reconcile.\n"
    )
    SaleAllocation.objects.all().delete()
    sale("open", "muskie-casting-rod", "--units", "5")
    sale("close", "muskie-casting-rod")

    assert (
        sale("reconcile", "muskie-casting-rod") == "The sale of muskie-casting-rod is closed: no hold to reconcile.\n"
    )
    assert sale("reconcile") == "No open sales.\n"
    assert json.loads(sale("reconcile", "muskie-casting-rod", "--json")) == []


def test_reconcile_that_cannot_read_the_hold_tells_no_drift_and_fails(product, settings):
    """The legacy API down: the hold is unknown, not 0. Told "drift -10" and exit 0, a merchant
    (or the script that runs it) took a sale that was never checked for one short of its units."""
    sale("open", "muskie-casting-rod", "--units", "10")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.LEGACY_API_URL = f"http://127.0.0.1:{unused.getsockname()[1]}/legacy-api"

    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("sale", "reconcile", stdout=out)
    with pytest.raises(CommandError):
        call_command("sale", "reconcile", "--json", stdout=(as_json := StringIO()))

    assert str(refused.value) == ("Not reconciled: muskie-casting-rod (the hold could not be read); run it again.")
    assert out.getvalue().startswith("muskie-casting-rod: owed 10, hold ?, drift ?, 0 in flight: not checked: ")
    check, orphans = json.loads(as_json.getvalue())
    assert (check["hold"], check["drift"], check["checked"]) == (None, None, False)
    assert (orphans["orphan"], orphans["checked"]) == (True, False)


def test_reconcile_that_cannot_look_for_holds_no_sale_owns_fails(product, settings):
    """With no sale open and the legacy API down, it said "No open sales." and exited 0: the
    holds no sale owns, which it is there to release, were never looked for."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.LEGACY_API_URL = f"http://127.0.0.1:{unused.getsockname()[1]}/legacy-api"

    for args in ((), ("muskie-casting-rod",)):
        out = StringIO()
        with pytest.raises(CommandError) as refused:
            call_command("sale", "reconcile", *args, stdout=out)
        assert str(refused.value) == "Not reconciled: the holds no sale owns could not be listed; run it again."
        assert "holds no sale owns not looked for: " in out.getvalue().lower()


def test_status_that_cannot_read_the_stock_of_record_says_so_and_fails(product, settings):
    """The legacy API down: the hold and the stock are unknown (null in --json), and a script
    that checks the exit code must not take the figures for the stock of record's."""
    sale("open", "muskie-casting-rod", "--units", "10")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.LEGACY_API_URL = f"http://127.0.0.1:{unused.getsockname()[1]}/legacy-api"

    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("sale", "status", "muskie-casting-rod", stdout=out)
    with pytest.raises(CommandError) as refused_all:
        call_command("sale", "status", "--json", stdout=(as_json := StringIO()))

    message = "Not read: muskie-casting-rod (the stock of record could not be read); run it again."
    assert str(refused.value) == str(refused_all.value) == message
    assert "hold ?" in out.getvalue() and "stock on hand ?, held ?, available ?" in out.getvalue()
    (figures,) = json.loads(as_json.getvalue())
    assert [figures[k] for k in ("hold", "on_hand", "held", "available")] == [None] * 4
    assert figures["error"]


def test_close_and_reopen_name_the_dead_letters_that_keep_units(product):
    """Units kept by dead-lettered orders wait for the merchant, not for a worker: told only
    "open it again once they are placed", a merchant would wait for ever."""
    sale("open", "muskie-casting-rod", "--units", "10")
    order = order_accept_as_buyer(quantity=2)
    placement.order_dead_letter(order_id=order.pk, error="legacy API unreachable: NewConnectionError")

    closed = sale("close", "muskie-casting-rod")
    with pytest.raises(CommandError) as refused:
        sale("open", "muskie-casting-rod", "--units", "5")

    waiting = (
        "(2 of them in dead-lettered orders, which no worker retries: "
        "redrive or cancel them under Hot path → Dead letters)"
    )
    assert f"Sale of muskie-casting-rod closed: 0 sold, 2 still held for orders in flight {waiting}." in closed
    assert str(refused.value) == (
        f"--units: 2 units of the last sale are still in orders in flight {waiting}; "
        "open it again once they are settled."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["open", "no-such-rod", "--units", "1"], "No product 'no-such-rod'."),
        (["open", "muskie-casting-rod", "--units", "0"], "--units: Allocate at least 1 unit."),
        (["open", "muskie-casting-rod", "--units", "101"], "--units: Only 100 available in the stock of record"),
        (["open", "muskie-casting-rod", "--units", "5", "--starts", "tomorrow"], "--starts: 'tomorrow' is not an ISO"),
        (
            [
                "open",
                "muskie-casting-rod",
                "--units",
                "5",
                "--starts",
                "2030-01-02T10:00",
                "--ends",
                "2030-01-02T09:00",
            ],
            "--ends: The sale must end after it starts.",
        ),
        (["open", "muskie-casting-rod", "--units", "5", "--per-order", "0"], "--per-order: At least 1 unit per order."),
        (["close", "muskie-casting-rod"], "The sale of muskie-casting-rod is not open."),
        (["status", "no-such-rod"], "No product 'no-such-rod'."),
    ],
)
def test_bad_input_is_refused_and_nothing_is_held(product, args, message):
    with pytest.raises(CommandError) as refused:
        sale(*args)

    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert not SaleAllocation.objects.filter(state=SaleState.OPEN).exists()
    assert stock().held == 0


def test_from_the_shell_a_refusal_is_one_line_and_exit_1(product, process_env, legacy):
    env = {**process_env, "LEGACY_API_URL": legacy}
    argv = [PYTHON, "manage.py", "sale", "open", "muskie-casting-rod", "--units", "500"]

    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    # The refusal is the last line (start-up logging may come before it), with no traceback.
    assert done.stderr.strip().splitlines()[-1] == (
        "CommandError: --units: Only 100 available in the stock of record: allocate at most that."
    )
    assert "Traceback" not in done.stderr
    assert stock().held == 0


def test_open_says_when_the_price_lowers_the_limit_per_order(product):
    """At $9,000,000 a unit the order backend takes at most 2 in one order (its totals stop at
    2,147,483,647 cents): the merchant who asked for 5 hears what buyers will get."""
    Product.objects.filter(pk=product.pk).update(price_cents=900_000_000)
    err = StringIO()
    call_command(
        "sale", "open", "muskie-casting-rod", "--units", "10", "--per-order", "5", stdout=StringIO(), stderr=err
    )
    assert err.getvalue().strip() == (
        "Buyers may order at most 2 per order, not 5: at $9,000,000.00 a unit, the order backend "
        "takes at most $21,474,836.47 in one order."
    )
    quiet = StringIO()
    Product.objects.filter(pk=product.pk).update(price_cents=14999)
    sale("close", "muskie-casting-rod")
    call_command(
        "sale", "open", "muskie-casting-rod", "--units", "10", "--per-order", "5", stdout=StringIO(), stderr=quiet
    )
    assert quiet.getvalue() == ""


def test_open_echoes_the_sale_s_window_and_status_shows_it(product):
    output = sale(
        "open", "muskie-casting-rod", "--units", "5", "--starts", "2026-11-27T12:00:00Z", "--ends", "2099-11-27T13:00"
    )
    ends = timezone.make_aware(datetime(2099, 11, 27, 13), timezone.get_default_timezone()).astimezone(UTC)
    window = f"from 2026-11-27T12:00:00+00:00 until {ends.isoformat()}"
    assert f"On sale {window}.\n" in output

    figures = json.loads(sale("status", "muskie-casting-rod", "--json"))
    assert (figures["starts_at"], figures["ends_at"]) == ("2026-11-27T12:00:00+00:00", ends.isoformat())
    assert sale("status").rstrip().endswith(f"; on sale {window}")


def test_open_without_a_window_says_it_is_on_sale_until_closed(product):
    assert "On sale from opening until closed.\n" in sale("open", "muskie-casting-rod", "--units", "5")
    figures = json.loads(sale("status", "muskie-casting-rod", "--json"))
    assert (figures["starts_at"], figures["ends_at"]) == (None, None)
