"""The merchant's live sale dashboard: for staff with its permission only; its page says
something useful without JavaScript, and in a browser its figures change during a sale without
a reload."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.admin_base import short_datetime
from orders.sales import sale_open
from readmodels import dashboard
from readmodels.answers import answer_record, answers_recent
from readmodels.dashboard import dashboard_body, dashboard_snapshot_refresh
from tests.conftest import eventually
from tests.readmodels.conftest import catch_up, place

DASHBOARD, DATA = "/admin/dashboard/", "/admin/dashboard/data.json"
ORDERS_URL = "/shop/rods/muskie-casting-rod/orders"


# What staff need to open the lists the dashboard links to (its dead letters, purchase orders).
LISTS = ("view_deadletter", "view_purchaseorder", "view_hotorder")


def _client(django_user_model, name: str, *, staff: bool, allowed: bool, lists: bool = False) -> Client:
    user = django_user_model.objects.create_user(name, f"{name}@example.com", "a-long-test-password")
    user.is_staff = staff
    user.save()
    if allowed:
        user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    if lists:
        user.user_permissions.add(*Permission.objects.filter(codename__in=LISTS))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_dashboard_and_its_json_are_refused_to_all_but_staff_with_its_permission(django_user_model):
    anonymous = Client()
    buyer = _client(django_user_model, "buyer", staff=False, allowed=True)
    staff = _client(django_user_model, "staff", staff=True, allowed=False)
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)

    for client in (anonymous, buyer):
        answer = client.get(DATA)
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        assert client.get(DASHBOARD).status_code == 302  # to the admin's sign-in
    assert staff.get(DATA).status_code == 403
    assert staff.get(DASHBOARD).status_code == 403
    answer = merchant.get(DATA)
    assert answer.status_code == 200 and answer["Cache-Control"].startswith("max-age=0")
    assert {"sales", "answers", "queue", "sales_per_minute", "totals", "dead_letters", "low_stock", "reorders"} <= set(
        answer.json()
    )
    assert {"top_sellers", "consumers"} <= set(answer.json())
    # The admin's header links to it for those who may see it, and only for them.
    assert 'href="/admin/dashboard/">Live sale dashboard</a>' in merchant.get("/admin/").content.decode()
    assert "Live sale dashboard" not in staff.get("/admin/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_figures_are_read_only_any_other_method_is_a_json_405(django_user_model, method):
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(django_user_model.objects.get(username="merchant"))

    for client in (merchant, guarded):
        answer = getattr(client, method)(DATA)
        assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"
        assert answer["Allow"] == "GET, HEAD"
    assert merchant.head(DATA).status_code == 200
    assert getattr(merchant, method)(DASHBOARD).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("failure", "status", "error"),
    [(OperationalError("database is locked"), 503, "unavailable"), (KeyError("minute"), 500, "server_error")],
)
def test_the_figures_fail_as_json_too(django_user_model, settings, monkeypatch, failure, status, error):
    """A script polling the figures got the shop's HTML error page when the database was away,
    or on a bug, though its 403 and 405 were JSON."""
    import readmodels.views

    settings.DEBUG = False
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)
    merchant.raise_request_exception = False

    def failing():
        raise failure

    monkeypatch.setattr(readmodels.views, "dashboard_body", failing)
    answer = merchant.get(DATA)

    assert (answer.status_code, answer["Content-Type"], answer.json()["error"]) == (status, "application/json", error)


@pytest.mark.django_db(transaction=True)
def test_the_page_shows_the_figures_without_javascript(catalogue, django_user_model):
    catalogue["tourney-casting-rod"].reorder_point = 58
    catalogue["tourney-casting-rod"].save()
    place("muskie-casting-rod", 2)
    place("tourney-casting-rod", 3)
    catch_up()
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)

    page = merchant.get(DASHBOARD).content.decode()

    assert '<b data-k="totals.orders">2</b>' in page
    assert '<b data-k="totals.revenue">$449.95</b>' in page
    assert "Northwoods Rod Company" in page and "$449.95" in page
    assert "tourney-casting-rod" in page and "Nothing below its reorder point" not in page
    assert "PO-" in page  # its draft purchase order, with a link
    assert "sales_per_minute" in page  # consumer lag, per consumer
    assert re.search(r"Figures of \d{1,2} [A-Z][a-z]{2} \d\d:\d\d:\d\d \(UTC\)", page)  # when they were made


@pytest.mark.django_db(transaction=True)
def test_the_page_links_only_to_the_lists_its_viewer_may_open(catalogue, django_user_model):
    catalogue["tourney-casting-rod"].reorder_point = 58
    catalogue["tourney-casting-rod"].save()
    place("tourney-casting-rod", 3)
    catch_up()
    dashboard_only = _client(django_user_model, "watcher", staff=True, allowed=True)
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True, lists=True)

    watched = dashboard_only.get(DASHBOARD).content.decode()
    managed = merchant.get(DASHBOARD).content.decode()

    orders_list, reorder = "/admin/orders/deadletter/?redriven_at__isempty=1", "/admin/readmodels/purchaseorder/"
    assert "PO-" in watched and f'href="{reorder}' not in watched and f'href="{orders_list}"' not in watched
    assert '<span data-k="dead_letters.orders">0</span>' in watched
    assert 'data-link-purchase-orders=""' in watched
    # Each a link for staff who may open the list: no link to a 403.
    assert merchant.get(orders_list).status_code == dashboard_only.get(orders_list).status_code + 200 - 403
    assert f'href="{reorder}' in managed and f'href="{orders_list}"' in managed
    assert 'data-link-purchase-orders="1"' in managed


def _page_data(page: str) -> dict:
    """The figures the page was rendered with (its json_script, which its script draws first)."""
    return json.loads(re.search(r'<script id="dash-data" type="application/json">(.*?)</script>', page, re.S)[1])


def _table(page: str, table_id: str) -> str:
    return re.search(rf'<table class="dash-table" id="{table_id}">.*?</table>', page, re.S)[0]


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_names_products_by_their_titles_with_no_query_a_product(catalogue, django_user_model):
    for product, point in (("tourney-casting-rod", 58), ("spinning-reel", 79)):
        catalogue[product].reorder_point = point
        catalogue[product].save()
    place("tourney-casting-rod", 3)
    catch_up()
    with CaptureQueriesContext(connection) as one_low:
        dashboard.dashboard_data()
    place("spinning-reel", 2)
    catch_up()
    with CaptureQueriesContext(connection) as two_low:
        data = dashboard.dashboard_data()
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)

    page = merchant.get(DASHBOARD).content.decode()

    low = {row["product"]: row["title"] for row in data["low_stock"]}
    assert low == {"tourney-casting-rod": "Tourney Casting Rod", "spinning-reel": "Spinning Reel"}
    assert {(po["product"], po["title"]) for po in data["reorders"]} == set(low.items())
    assert len(two_low) == len(one_low)
    for table_id in ("dash-low", "dash-reorders"):
        table = _table(page, table_id)
        assert "<td>Tourney Casting Rod</td>" in table and "<td>Spinning Reel</td>" in table
        assert "tourney-casting-rod" not in table and "spinning-reel" not in table


@pytest.mark.django_db(transaction=True)
def test_the_leaderboards_name_categories_by_their_names(catalogue, django_user_model):
    place("tourney-casting-rod", 3)
    catch_up()
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)

    data = dashboard.dashboard_data()
    page = merchant.get(DASHBOARD).content.decode()

    category = data["top_sellers"]["category"][0]
    assert (category["key"], category["name"]) == ("rods", "Rods")
    supplier = data["top_sellers"]["supplier"][0]
    assert supplier["name"] == supplier["key"]
    assert "<td>Rods</td>" in _table(page, "dash-top-category")


@pytest.mark.django_db(transaction=True)
def test_the_page_dates_its_minutes_as_the_admin_does_in_the_shop_s_time_zone(catalogue, django_user_model, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # half an hour off any UTC hour
    place("muskie-casting-rod", 2)
    catch_up()
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)

    page = merchant.get(DASHBOARD).content.decode()

    data = _page_data(page)
    minutes = [row["minute"] for row in data["sales_per_minute"][-5:]][::-1]
    expected = [short_datetime(parse_datetime(minute)) for minute in minutes]
    table = _table(page, "dash-minutes")
    assert re.findall(r"<tr><td>([^<]*)</td>", table) == expected
    assert "<th>Minute (Asia/Kolkata)</th>" in table
    made = short_datetime(parse_datetime(data["generated_at"]), seconds=True)
    assert f"Figures of {made} (Asia/Kolkata)" in page


@pytest.mark.django_db
def test_the_admins_sidebar_is_left_out_for_a_merchant_with_nothing_else_to_see(django_user_model):
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)
    page = merchant.get(DASHBOARD).content.decode()
    assert "permission to view or edit anything" not in page and 'id="nav-sidebar"' not in page

    merchant_user = django_user_model.objects.get(username="merchant")
    merchant_user.user_permissions.add(Permission.objects.get(codename="view_hotorder"))
    page = merchant.get(DASHBOARD).content.decode()
    assert 'id="nav-sidebar"' in page and "permission to view or edit anything" not in page


@pytest.mark.django_db
def test_a_fetch_takes_the_workers_fresh_document_and_makes_its_own_when_it_is_stale(django_user_model):
    anonymous = Client()
    staff = _client(django_user_model, "staff", staff=True, allowed=False)
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)
    made = b'{"generated_at": "made by a worker"}'
    cache.set_many({dashboard.SNAPSHOT_KEY: made, dashboard.SNAPSHOT_AT_KEY: time.time()}, 30)

    # The permission comes first, and a refused fetch does not set the workers making it.
    assert anonymous.get(DATA).status_code == 403 and staff.get(DATA).status_code == 403
    assert cache.get(dashboard.WATCHED_KEY) is None
    answer = merchant.get(DATA)
    assert answer.status_code == 200 and answer.content == made
    assert answer["Content-Type"] == "application/json" and answer["Cache-Control"].startswith("max-age=0")
    assert cache.get(dashboard.WATCHED_KEY) is not None

    cache.set(dashboard.SNAPSHOT_AT_KEY, time.time() - dashboard.SNAPSHOT_FRESH_SECONDS - 1, 30)
    own = merchant.get(DATA).json()
    assert own["generated_at"] != "made by a worker" and own["totals"]["orders"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_makes_the_document_only_while_watched_and_due_and_one_at_a_time(catalogue, settings):
    place("muskie-casting-rod", 2)
    catch_up()
    # A worker may run with another deployment's URLs; the admin's links still come right.
    settings.ROOT_URLCONF = "config.urls_hotpath"
    now = time.time()
    assert dashboard_snapshot_refresh(now=now) is False  # nobody watches
    assert cache.get(dashboard.SNAPSHOT_KEY) is None

    cache.set(dashboard.WATCHED_KEY, now, 30)
    cache.set(dashboard.MAKER_KEY, now, 30)  # another worker is making it
    assert dashboard_snapshot_refresh(now=now) is False
    cache.delete(dashboard.MAKER_KEY)
    assert dashboard_snapshot_refresh(now=now) is True
    made = json.loads(cache.get(dashboard.SNAPSHOT_KEY))
    assert made["totals"]["orders"] == 1
    assert made["dead_letters"]["orders_url"] == "/admin/orders/deadletter/?redriven_at__isempty=1"
    assert made["reorders"] == [] or made["reorders"][0]["url"].startswith("/admin/readmodels/purchaseorder/")
    assert cache.get(dashboard.MAKER_KEY) is None

    assert dashboard_snapshot_refresh(now=now + 1) is False  # not due yet
    place("tourney-casting-rod", 1)
    catch_up()
    later = now + dashboard.SNAPSHOT_DUE_SECONDS
    assert dashboard_snapshot_refresh(now=later) is True
    assert json.loads(dashboard_body(now=later + 0.5))["totals"]["orders"] == 2

    cache.delete(dashboard.WATCHED_KEY)
    assert dashboard_snapshot_refresh(now=later + 60) is False  # the merchant went away


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_keeps_the_document_fresh_while_the_merchant_watches(
    catalogue, processes, process_env, django_user_model
):
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True)
    place("muskie-casting-rod", 2)
    catch_up()
    worker = processes.celery_worker({**process_env, "DASHBOARD_SNAPSHOT_LOOP_SECONDS": "0.2"}, concurrency=1)
    eventually(lambda: " ready." in worker.log(), message="the worker did not start")
    time.sleep(0.5)  # its maker has looked more than once
    assert cache.get(dashboard.SNAPSHOT_KEY) is None  # nobody watches yet

    first = merchant.get(DATA)
    eventually(lambda: cache.get(dashboard.SNAPSHOT_KEY) is not None, message="no worker made the document")
    made = cache.get(dashboard.SNAPSHOT_KEY)
    assert json.loads(made)["totals"]["orders"] == 1 == first.json()["totals"]["orders"]
    assert merchant.get(DATA).content == made


def test_answers_are_counted_per_second_with_the_acceptance_latency(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "answers"}}
    now = 1_800_000_000.5
    for ms in (1, 3, 3, 40, 900):
        answer_record(product="rod", status=202, seconds=ms / 1000, now=now - 1)
    answer_record(product="rod", status=409, seconds=0.001, now=now - 1)
    answer_record(product="rod", status=429, seconds=0.001, now=now - 2)
    answer_record(product="rod", status=400, seconds=0.001, now=now - 1)

    figures = answers_recent(products=["rod"], seconds=3, now=now)["rod"]

    assert figures["accepted"] == [0, 0, 5] and figures["sold_out"] == [0, 0, 1] and figures["throttled"] == [0, 1, 0]
    assert (figures["p50_ms"], figures["p99_ms"]) == (5, 1000)


@pytest.mark.browser
@pytest.mark.slow
def _dashboard_in_a_browser(browser, live_server, django_user_model, *, width=1280, height=900, init_script=""):
    """The dashboard open in Chromium, signed in as a merchant who may see it and the lists it
    links to, its first figures drawn: the merchant's test client, the context and the page."""
    merchant = _client(django_user_model, "merchant", staff=True, allowed=True, lists=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": "sessionid", "value": merchant.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    page.goto(f"{live_server.url}{DASHBOARD}")
    page.wait_for_selector(".dash-live", timeout=20_000)
    return merchant, context, page


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_dashboard_follows_a_small_sale_without_a_reload(
    catalogue, live_server, settings, browser, django_user_model, tmp_path
):
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    sale_open(product=catalogue["muskie-casting-rod"], units=10, per_order_limit=2)
    catch_up()
    merchant, context, page = _dashboard_in_a_browser(browser, live_server, django_user_model)
    page.evaluate("window.notReloaded = true")
    assert page.locator('[data-k="totals.orders"]').inner_text() == "0"

    buyer = Client()
    for _ in range(3):
        answer = buyer.post(
            ORDERS_URL,
            {
                "quantity": 2,
                "customer": {"name": "Ann Angler", "email": f"{uuid.uuid4().hex[:8]}@example.com"},
                "payment": {"card_number": "4242424242424242"},
            },
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
        assert answer.status_code == 202, answer.content
    place("spinning-reel", 2)
    place("tourney-casting-rod", 1)
    catch_up()

    # As functions, not expressions: Playwright runs an expression through eval, which the
    # page's Content-Security-Policy refuses.
    page.wait_for_function(
        "() => document.querySelector('[data-k=\"totals.orders\"]').textContent === '2'", timeout=20_000
    )
    sale_row = page.locator("#dash-sales tbody tr").first
    page.wait_for_function(
        "() => document.querySelector('#dash-sales tbody td:nth-child(2)').textContent.startsWith('4 of 10')"
    )
    assert "Muskie Casting Rod" in sale_row.inner_text()
    assert page.evaluate("window.notReloaded") is True
    answers = merchant.get(DATA).json()["answers"]["muskie-casting-rod"]
    assert sum(answers["accepted"]) == 3, answers
    assert page.locator("#dash-answers-charts .uplot").count() == 1
    assert page.locator("#dash-sales-chart .uplot").count() == 1
    page.screenshot(path=str(tmp_path / "dashboard-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page is wider than a phone"
    page.screenshot(path=str(tmp_path / "dashboard-390.png"), full_page=True)
    context.close()


# Keeps each uPlot chart the page makes, so that a test can ask a chart how it labels its time axis.
UPLOT_KEPT = """(() => {
  let kept;
  Object.defineProperty(window, "uPlot", {
    configurable: true,
    get() { return kept; },
    set(real) {
      window.plots = [];
      kept = function (opts, data, target) {
        const made = new real(opts, data, target);
        window.plots.push(made);
        return made;
      };
      Object.assign(kept, real);
    },
  });
})();"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_charts_and_tables_date_and_name_as_the_admin_does(
    catalogue, live_server, settings, browser, django_user_model
):
    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    settings.TIME_ZONE = "Asia/Kolkata"  # half an hour off any UTC hour
    catalogue["tourney-casting-rod"].reorder_point = 58
    catalogue["tourney-casting-rod"].save()
    sale_open(product=catalogue["muskie-casting-rod"], units=10, per_order_limit=2)
    place("tourney-casting-rod", 3)
    catch_up()
    _, context, page = _dashboard_in_a_browser(browser, live_server, django_user_model, init_script=UPLOT_KEPT)

    # Now, and a moment of another year just after midnight in the shop's zone.
    whens = [timezone.now().replace(microsecond=0), datetime(2020, 2, 29, 18, 30, 5, tzinfo=UTC)]
    axes = page.evaluate(
        "(stamps) => window.plots.map((u) => [!!u.root.closest('#dash-sales-chart'), u.axes[0].values(u, stamps)])",
        [w.timestamp() for w in whens],
    )
    assert sorted(axes) == [
        [False, [short_datetime(w, seconds=True) for w in whens]],  # answers, a point a second
        [True, [short_datetime(w) for w in whens]],  # sales, a point a minute
    ]
    latest = timezone.now().replace(second=0, microsecond=0)
    labels = page.locator("#dash-minutes tbody tr td:first-child").all_inner_texts()
    assert labels in (
        [short_datetime(start - timedelta(minutes=n)) for n in range(5)]
        for start in (latest, latest - timedelta(minutes=1))
    )
    status = page.locator("#dash-updated").inner_text()
    assert re.fullmatch(r"Live · figures of \d{1,2} [A-Z][a-z]{2} \d\d:\d\d:\d\d \(Asia/Kolkata\)", status)
    assert page.locator("#dash-low tbody td:nth-child(1)").all_inner_texts() == ["Tourney Casting Rod"]
    assert page.locator("#dash-reorders tbody td:nth-child(2)").all_inner_texts() == ["Tourney Casting Rod"]
    context.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_an_open_purchase_order_does_not_widen_the_page(catalogue, live_server, browser, django_user_model):
    catalogue["tourney-casting-rod"].reorder_point = 58
    catalogue["tourney-casting-rod"].save()
    place("tourney-casting-rod", 3)
    catch_up()
    _, context, page = _dashboard_in_a_browser(browser, live_server, django_user_model, width=390, height=844)

    assert page.locator("#dash-reorders tbody a").all_inner_texts()[0].startswith("PO-")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page is wider than a phone"
    context.close()


def test_an_answer_costs_the_buyer_no_round_trip_and_is_counted_once_flushed(monkeypatch):
    """Counted in the process's memory; the cache (Redis here when there is one) gets them in
    one pipeline from the flusher, and the dashboard's read flushes its own process first."""
    from django.core.cache import cache

    from readmodels import answers

    calls = []
    monkeypatch.setattr(cache, "incr", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(answers, "_flusher_start", lambda: None)  # no thread: flushed by hand below
    now, product = 1_800_000_100.5, f"reel-{uuid.uuid4().hex}"  # keys of its own in a shared Redis
    for _ in range(7):
        answer_record(product=product, status=409, seconds=0.001, now=now - 1)
    assert calls == []
    monkeypatch.undo()
    figures = answers_recent(products=[product], seconds=2, now=now)[product]
    assert figures["sold_out"] == [0, 7]
