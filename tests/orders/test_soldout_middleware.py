"""The short way for a sold-out sale's new buyers (orders.middleware): answered before the
middlewares such an answer does not need, with the answer the view gives, and nothing else
taken that way: every other request of the orders URL is answered by the view, as before."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.common import CommonMiddleware
from django.test import Client
from opentelemetry.sdk.trace import TracerProvider

from orders import gate, selectors, views
from orders.models import SaleAllocation
from orders.selectors import product_memo_forget
from tests.conftest import ROOT
from tests.orders.conftest import order_body, post_order
from tests.orders.test_known_keys import sell_out
from tests.orders.test_soldout_lease import redis_cache, sale  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)


def hot_path_urls(settings) -> None:
    """The hot path's URLs, as its own deployment serves them (and the all-in-one server once
    the edge router sends a sale's requests there), once the sale's units are held: the
    legacy API, served from the all-in-one URLconf, is not called after that."""
    settings.ROOT_URLCONF = "config.urls_hotpath"


SHORT_WAY = "orders.middleware.SoldOutAnswerMiddleware"
SOLD_OUT = {"error": "sold_out", "detail": "Sold out.", "remaining": 0}


class ViewCalls:
    """`order_create`'s own work (`_order_create`), counted."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = views._order_create

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(views, "_order_create", counted)


@pytest.fixture
def view_calls(monkeypatch) -> ViewCalls:
    return ViewCalls(monkeypatch)


@pytest.fixture
def sold_out(client, sale, settings):  # noqa: F811 - the fixture imported above
    hot_path_urls(settings)
    sell_out(sale)
    assert post_order(client, order_body()).status_code == 409  # takes the process's lease
    return sale


def test_a_sold_out_answer_is_given_before_the_view_and_the_middlewares_it_does_not_need(
    client, sold_out, view_calls, monkeypatch
):
    counted = []
    monkeypatch.setattr(views, "answer_record", lambda **kw: counted.append(kw))
    monkeypatch.setattr(SessionMiddleware, "process_request", lambda *a: pytest.fail("the session was looked up"))
    monkeypatch.setattr(CommonMiddleware, "process_response", lambda *a: pytest.fail("the common middleware ran"))
    answers = [post_order(client, order_body()) for _ in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(409, SOLD_OUT)] * 3
    assert view_calls.count == 0
    # The merchant's live dashboard counts each one, as the view does.
    assert [(c["product"], c["status"]) for c in counted] == [("muskie-casting-rod", 409)] * 3
    # What the middlewares it skipped would have added, it has; the security headers it is not
    # before.
    answer = answers[0]
    assert answer["Content-Length"] == str(len(answer.content))
    assert (answer["Cache-Control"], answer["Content-Type"]) == ("no-store", "application/json")
    assert (answer["X-Frame-Options"], answer["X-Content-Type-Options"]) == ("DENY", "nosniff")


def test_the_short_way_answers_exactly_what_the_view_answers(client, sold_out, settings):
    short = post_order(client, order_body())
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != SHORT_WAY]
    whole = post_order(Client(), order_body())
    assert (short.status_code, short.content) == (whole.status_code, whole.content)
    assert sorted(short.items()) == sorted(whole.items())


def test_every_other_answer_of_a_sold_out_sale_is_the_view_s(client, sale, view_calls, settings):  # noqa: F811
    hot_path_urls(settings)
    key, body = uuid.uuid4().hex, order_body()
    assert post_order(client, body, key=key).status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    assert post_order(client, order_body()).status_code == 409  # takes the lease
    view_calls.count = 0
    # A key that had an order gets that order again.
    again = post_order(client, body, key=key)
    assert (again.status_code, again.json()["number"]) == (202, post_order(client, body, key=key).json()["number"])
    # Bad input is told what is wrong, naming the field, whether the sale is sold out or not.
    bad = post_order(client, order_body(quantity=0))
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["quantity"])
    missing = post_order(client, order_body(), key=None)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["fields"]
    assert post_order(client, "{not json").status_code == 400
    assert view_calls.count == 5
    # Another method, as before: the view's 405.
    assert client.put("/shop/rods/muskie-casting-rod/orders").status_code == 405


def test_a_traced_request_goes_the_whole_way(client, sold_out, view_calls):
    # Its server span is named by its route in the view's middleware hook (OpenTelemetry's).
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("edge"):
        answer = post_order(client, order_body())
    assert (answer.status_code, answer.json(), view_calls.count) == (409, SOLD_OUT, 1)
    assert post_order(client, order_body()).status_code == 409
    assert view_calls.count == 1


def test_a_cache_away_is_the_view_s_503_not_a_500(client, sold_out, monkeypatch):
    # The short way asks no cache: without the product's copy in this process it leaves the
    # request to the view, which finds the cache away and says so.
    def away(**kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    product_memo_forget()
    monkeypatch.setattr(selectors, "hot_product_get", away)
    answer = post_order(client, order_body())
    assert (answer.status_code, answer.json()["error"]) == (503, "unavailable")
    assert answer.has_header("Retry-After")


def test_an_order_while_no_sale_here_is_sold_out_is_not_looked_at_twice(client, sale, settings, monkeypatch):  # noqa: F811
    hot_path_urls(settings)
    monkeypatch.setattr(views, "sold_out_answer", lambda *args, **kwargs: pytest.fail("the short way was tried"))
    assert post_order(client, order_body()).status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    with pytest.raises(pytest.fail.Exception):
        post_order(client, order_body())  # takes the lease, then the next one is tried the short way
        post_order(client, order_body())
    # A lease that has ended (the sale's units came back) is none either.
    gate._leases[sale.pk] = dataclasses.replace(gate._leases[sale.pk], until=time.monotonic() - 1)
    assert post_order(client, order_body()).status_code == 409


def _deployment_settings(deployment: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'middleware': s.MIDDLEWARE, 'silenced': s.SILENCED_SYSTEM_CHECKS}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SHOP_DEPLOYMENT": deployment}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("deployment", "short_way", "silenced"),
    [
        ("all", True, []),
        ("hotpath", True, ["admin.E409", "axes.W002"]),  # it has no admin's messages, no sign-in
        ("ceiling", True, ["admin.E409", "axes.W002"]),
        ("monolith", False, []),
        ("legacy", False, []),
    ],
)
def test_where_the_short_way_runs_and_which_checks_are_silenced(deployment, short_way, silenced):
    found = _deployment_settings(deployment)
    middleware = found["middleware"]
    assert (SHORT_WAY in middleware) is short_way
    if short_way:
        security = middleware.index("django.middleware.security.SecurityMiddleware")
        assert middleware[security + 1 : security + 3] == [
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
            SHORT_WAY,
        ]
    assert found["silenced"] == silenced
