"""`edge_route`: add, list, enable, disable, remove, with previews, audit and clear errors."""

from __future__ import annotations

import re
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from edge.models import Route, RouteAudit
from tests.conftest import PYTHON, ROOT
from tests.edge.conftest import create_routes, ensure_origins


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("edge_route", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def origins(db):
    ensure_origins()


BAD_INPUT = [
    (["bad", "/shop/<x>/*", "--origin", "hotpath"], "characters CloudFront does not accept"),
    (["bad", "/" + "a" * 300, "--origin", "hotpath"], "CloudFront allows at most 255"),
    (
        [
            "bad",
            "/a/*",
            "--origin",
            "hotpath",
            "--window-start",
            "2026-11-27T10:00",
            "--window-end",
            "2026-11-27T09:00",
        ],
        "The sale window must end after it starts.",
    ),
    (["bad", "/a/*", "--origin", "hotpath", "--canary", "150"], "A canary is a percentage from 0 to 100, not 150."),
    (["bad", "/a/*", "--origin", "hotpath", "--canary", "-5"], "A canary is a percentage from 0 to 100, not -5."),
    (["bad", "/a/*", "--redirect", "not a url", "--status", "301"], "is not a URL"),
    (["bad", "/a/*", "--origin", "nowhere"], "No origin named 'nowhere'"),
    (["bad", "/a/*"], "Choose the origin"),
    (["catchall", "*", "--origin", "legacy-api", "--enable"], "covers the merchant's admin"),
    (["admin", "/adm*", "--origin", "hotpath"], "covers the merchant's admin"),
    (["legacy", "/legacy-api/*", "--origin", "hotpath", "--enable"], "covers the legacy order API"),
    (["legacy", "/leg*", "--redirect", "https://example.com/", "--status", "301"], "covers the legacy order API"),
    (["orders", "*/orders", "--origin", "hotpath"], "covers the legacy order API"),
    (["orders", "/legacy-api/orders*", "--origin", "hotpath"], "covers the legacy order API"),
    (["stock", "/legacy-api/stock/*", "--origin", "hotpath"], "covers the legacy order API"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_edge_route_add_rejects_bad_input_and_saves_nothing(origins, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("add", *args)
    assert not Route.objects.exists() and not RouteAudit.objects.exists()


def test_edge_route_add_refuses_a_26th_behaviour(origins):
    create_routes()
    with pytest.raises(CommandError) as refused:
        run("add", "one-more", "/t/more/*", "--origin", "hotpath")
    # One line in the operator's words: no "__all__: " (Django's name for a refusal of the whole route).
    assert str(refused.value) == (
        "The distribution already has 25 behaviours, CloudFront's quota (EDGE_MAX_BEHAVIORS=25); remove a route first."
    )
    assert Route.objects.count() == 25


def test_edge_route_add_list_enable_disable_remove(origins):
    out, _ = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath")
    assert "Added route muskie (disabled)" in out
    assert not Route.objects.get(name="muskie").enabled, "a new route is off until switched on"
    out, _ = run("enable", "muskie")
    assert "+  /shop/rods/muskie-casting-rod/*  -> hotpath" in out, "the preview shows the new behaviour"
    assert Route.objects.get(name="muskie").enabled
    out, _ = run("list")
    assert "muskie" in out and "on " in out and "-> hotpath" in out
    run("disable", "muskie")
    assert not Route.objects.get(name="muskie").enabled
    run("remove", "muskie")
    assert not Route.objects.exists()
    actions = list(RouteAudit.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["create", "enable", "disable", "delete"]


def test_dry_run_previews_and_changes_nothing(origins):
    out, _ = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable", "--dry-run")
    assert "+" in out and "muskie-casting-rod" in out and "Dry run: nothing was changed." in out
    assert not Route.objects.exists() and not RouteAudit.objects.exists()
    run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable")
    run("disable", "muskie", "--dry-run")
    assert Route.objects.get(name="muskie").enabled


def test_a_shadowed_route_is_added_with_a_warning(origins):
    run("add", "rods", "/shop/rods/*", "--origin", "monolith", "--enable")
    _, err = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable")
    assert "can never match: the earlier route rods" in err


def test_a_route_switched_on_with_a_window_that_has_ended_is_warned_of(origins):
    window = ("--window-start", "2020-01-01T12:00:00Z", "--window-end", "2020-01-01T13:00:00Z")
    _, err = run("add", "old", "/shop/rods/old/*", "--origin", "monolith", *window)
    assert "window ended" not in err  # off: nothing to warn of
    _, err = run("enable", "old")
    assert "Route old is on, but its window ended at 2020-01-01T13:00:00+00:00" in err


def test_redirects_windows_and_canaries_from_the_command(origins):
    run("add", "moved", "/old/*", "--redirect", "https://shop.example.com/new/", "--status", "308", "--enable")
    run(
        "add", "sale", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--canary", "25",
        "--window-start", "2026-11-27T09:00:00+00:00", "--window-end", "2026-11-27T10:00:00+00:00",
    )  # fmt: skip
    moved, sale = Route.objects.get(name="moved"), Route.objects.get(name="sale")
    assert moved.redirect_status == 308 and moved.origin is None
    assert sale.canary_percent == 25 and sale.window_end.hour == 10


def test_unknown_route_names_are_a_clear_error(origins):
    with pytest.raises(CommandError, match="No route named 'ghost'"):
        run("disable", "ghost")


def test_a_route_added_before_others_warns_of_the_routes_it_now_hides(origins):
    run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable", "--position", "20")
    _, err = run("add", "rods", "/shop/rods/*", "--origin", "monolith", "--enable", "--position", "10")
    assert "Route muskie (/shop/rods/muskie-casting-rod/*) can never match: route rods comes first" in err


def test_an_escaped_ampersand_is_stored_as_cloudfront_returns_it(origins):
    run("add", "amp", "/t/a&amp;b/*", "--origin", "hotpath")
    assert Route.objects.get(name="amp").pattern == "/t/a&b/*"


def test_a_window_that_is_not_a_date_is_one_line_naming_the_option(origins):
    done = subprocess.run(
        [PYTHON, "manage.py", "edge_route", "add", "r1", "/x/*", "--origin", "hotpath", "--window-start", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "CommandError: --window-start: 'nope' is not an ISO date and time, e.g. 2026-11-27T09:00:00+00:00."
    )
    assert not Route.objects.filter(name="r1").exists()


def test_an_export_is_its_owners_alone_and_a_bad_out_is_one_line(origins, tmp_path):
    out = tmp_path / "export"
    call_command("edge_export", "--target", "all", "--out", str(out), stdout=StringIO())
    modes = {path.name: path.stat().st_mode & 0o777 for path in out.rglob("*") if path.is_file()}
    assert modes and set(modes.values()) == {0o600}, modes  # they carry the origin and canary secrets

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(CommandError, match=r"^--out .*a-file: "):
        call_command("edge_export", "--target", "nginx", "--out", str(a_file), stdout=StringIO())


def test_an_origin_saved_before_domains_were_checked_stops_the_nginx_export_in_one_line(origins, tmp_path):
    from edge.models import Origin

    Origin.objects.filter(name="monolith").update(domain="shop.example;\n}")  # as an older release let it be
    with pytest.raises(CommandError, match=r"^cannot export: origin monolith: .* is not a host name"):
        call_command("edge_export", "--target", "nginx", "--out", str(tmp_path), stdout=StringIO())
    Origin.objects.filter(name="monolith").update(domain="eu-shop.example.com.")  # a fully qualified name
    call_command("edge_export", "--target", "nginx", "--out", str(tmp_path), stdout=StringIO())


def test_a_pattern_that_takes_none_of_the_legacy_apis_paths_is_accepted(origins):
    """The guard refuses what takes the legacy API's endpoints, not every pattern with a star."""
    out, _ = run("add", "pictures", "*.jpg", "--origin", "hotpath")
    assert "Added route pictures (disabled)" in out
    out, _ = run("add", "legacy", "/legacy-api/*", "--origin", "legacy-api")
    assert "Added route legacy (disabled)" in out


def test_a_hot_path_route_for_a_product_with_no_open_sale_warns_that_its_page_would_404(origins):
    """The hot path serves only products whose sale is open: a route sending another product's
    page there shows shoppers a 404, so the merchant is told which products, and what to do."""
    from orders.models import SaleAllocation
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    muskie = Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=100
    )
    Product.objects.create(category=rods, title="Pike Rod", slug="pike-rod", price_cents=100)
    SaleAllocation.objects.create(product=muskie, is_hot=False, allocated=5)

    _, err = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable")
    assert "Muskie Casting Rod (/shop/rods/muskie-casting-rod/) has no open sale" in err
    assert "404" in err and "sale open muskie-casting-rod --units N --route" in err
    _, err = run("add", "rods", "/shop/rods/*", "--origin", "hotpath")
    assert err == "", "a route switched off sends nothing anywhere"
    _, err = run("enable", "rods")
    assert "Muskie Casting Rod" in err and "Pike Rod" in err

    SaleAllocation.objects.filter(product=muskie).update(is_hot=True)
    run("disable", "muskie")
    _, err = run("enable", "muskie")
    assert "no open sale" not in err, err
    _, err = run("add", "monolith-rods", "/shop/rods/*", "--origin", "monolith", "--enable")
    assert "no open sale" not in err, "only the hot path needs an open sale"
    # The hot path takes a product's orders too: a route for those alone needs the sale as much.
    _, err = run("add", "rods-api", "/shop/rods/*/orders", "--origin", "hotpath", "--enable")
    assert "Pike Rod (/shop/rods/pike-rod/) has no open sale" in err and "Muskie" not in err, err


def test_a_hot_path_route_for_a_product_whose_sale_ended_warns_of_the_ended_page_not_a_404(origins):
    """A product whose sale has ended is shown by the hot path as that sale's page, ended (until
    nginx or CloudFront are exported again), not as a 404: the warning says what shoppers get."""
    from orders.models import SaleAllocation, SaleState
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    muskie = Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=100
    )
    pike = Product.objects.create(category=rods, title="Pike Rod", slug="pike-rod", price_cents=100)
    SaleAllocation.objects.create(product=muskie, is_hot=False, allocated=5, state=SaleState.CLOSED)

    _, err = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable")
    assert "Muskie Casting Rod (/shop/rods/muskie-casting-rod/) has no open sale" in err
    assert "404" not in err and "ended" in err, err
    assert "sale open muskie-casting-rod --units N --route" in err

    SaleAllocation.objects.create(product=pike, is_hot=False, allocated=5)  # a draft: never opened
    _, err = run("add", "rods", "/shop/rods/*", "--origin", "hotpath", "--enable")
    assert "Muskie Casting Rod" in err and "Pike Rod" in err
    assert "404" in err and "ended" in err, err


def test_a_mini_site_route_that_would_take_the_sale_pages_orders_is_warned_of(origins, settings):
    """The mini-site is a bucket: its sale page posts the order to its own origin's /orders unless
    EDGE_HOTPATH_API_URL names the hot path's API, so a route sending /orders there too loses
    every order of the sale."""
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    Product.objects.create(category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=100)

    _, err = run("add", "page", "/shop/rods/muskie-casting-rod/*", "--origin", "minisite", "--enable")
    assert "sends /shop/rods/muskie-casting-rod/orders and /shop/rods/muskie-casting-rod/stock to the mini-site" in err
    assert "EDGE_HOTPATH_API_URL" in err

    # The orders sent to the hot path first, the stock not yet; then both: the page alone is the mini-site's.
    run("remove", "page")
    run("add", "orders", "/shop/rods/muskie-casting-rod/orders", "--origin", "hotpath", "--enable")
    _, err = run("add", "page", "/shop/rods/muskie-casting-rod/*", "--origin", "minisite", "--enable")
    assert "sends /shop/rods/muskie-casting-rod/stock to the mini-site" in err, err
    run("remove", "page")
    run("add", "stock", "/shop/rods/muskie-casting-rod/stock", "--origin", "hotpath", "--enable")
    _, err = run("add", "page", "/shop/rods/muskie-casting-rod/*", "--origin", "minisite", "--enable")
    assert "mini-site" not in err, err
    run("remove", "orders")
    run("remove", "stock")
    settings.EDGE_HOTPATH_API_URL = "https://api.example.com"
    _, err = run("enable", "page")
    assert "mini-site" not in err, err


def test_a_bucket_route_behind_another_origin_s_behaviour_is_warned_of(origins, settings):
    """A hot-path canary first, the mini-site for the others, on one pattern: CloudFront has
    one behaviour for it, the canary's, and the router sends the others to the bucket without
    its origin access control, where they get 403."""
    settings.EDGE_HOTPATH_API_URL = "https://api.example.com"
    run("add", "canary", "/t/twin/*", "--origin", "hotpath", "--canary", "10", "--enable")
    _, err = run("add", "page", "/t/twin/*", "--origin", "minisite", "--enable")
    assert "behind route canary's behaviour" in err and "403" in err, err
    _, err = run("add", "alone", "t/own/*", "--origin", "minisite", "--enable")
    assert "403" not in err, err
    # The sale's usual order: the bucket's page first, the canary switched on after it.
    run("remove", "canary")
    run("add", "wider", "/t/*", "--origin", "hotpath", "--canary", "10", "--position", "0")
    _, err = run("enable", "wider")
    assert "Route page sends /t/twin/* to the bucket" in err and "behind route wider's behaviour" in err, err
    assert "Route alone sends" in err, err


def test_a_route_to_the_legacy_api_says_it_serves_the_local_edge_only(origins):
    _, err = run("add", "legacy", "/legacy-api/*", "--origin", "legacy-api", "--enable")
    assert "private to its VPC" in err and "403" in err, err


def test_the_list_keeps_its_columns_for_a_long_route_name(origins):
    run("add", "short", "/shop/reels/*", "--origin", "monolith")
    run("add", "saltwater-spinning-reel-flash-sale", "/shop/reels/saltwater-spinning-reel/*", "--origin", "hotpath")

    out, _ = run("list")

    rows = [line for line in out.splitlines() if " -> " in line]
    assert len(rows) == 2 and len({row.index(" /shop/") for row in rows}) == 1, out


def test_every_change_prints_its_preview_and_list_takes_no_change_options(origins):
    out, _ = run("add", "muskie", "/shop/rods/muskie-casting-rod/*", "--origin", "hotpath", "--enable")
    assert "+  /shop/rods/muskie-casting-rod/*  -> hotpath" in out and "Added route muskie (enabled)" in out
    assert "Dry run" not in out and Route.objects.get(name="muskie").enabled
    for option in ("--dry-run", "--actor=someone"):
        with pytest.raises(CommandError, match="unrecognized arguments"):
            run("list", option)
    usage = subprocess.run(
        [PYTHON, "manage.py", "edge_route", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for action in ("enable", "disable", "remove"):
        assert re.search(rf"^\s+{action}\s+\S", usage, re.MULTILINE), f"{action} has a help line"
