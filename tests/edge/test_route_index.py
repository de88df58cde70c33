"""The routes compiled once per routes' version (edge.route_index, edge.route_version): the
same decisions as the matcher for every shared case, no query per request once compiled,
and every kind of change (a save, a bulk update, a delete, the default origin) seen at the
next request."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client

from edge import matcher, selectors, services
from edge.models import Origin, Route
from edge.route_index import RouteIndex
from tests.edge.cases import CANARY_SECRET, CASES, Case


def headers_of(case: Case) -> dict[str, str]:
    headers = {}
    if case.tester:
        headers[matcher.CANARY_HEADER] = case.tester
    if case.secret:
        headers[matcher.CANARY_SECRET_HEADER] = case.secret
    return headers


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_index_decides_each_shared_case_as_the_matcher_does(shared_routes, case):
    routes = selectors.enabled_routes()
    index = RouteIndex(routes, default_origin="monolith")
    kwargs = dict(
        now=time.time(),
        cookies={matcher.CANARY_COOKIE: case.cookie} if case.cookie else {},
        headers=headers_of(case),
        make_key=lambda: "buyer-3",
        canary_secret=CANARY_SECRET,
    )

    got = index.decide(case.uri, **kwargs)
    want = matcher.decide(routes, case.uri, default_origin="monolith", **kwargs)

    assert (got.route, got.origin, got.redirect_url, got.redirect_status, got.issued_canary_key) == (
        want.route,
        want.origin,
        want.redirect_url,
        want.redirect_status,
        want.issued_canary_key,
    )


def test_without_routes_the_index_sends_everything_to_the_default_origin():
    decision = RouteIndex([], default_origin="monolith").decide("/shop/rods/", now=time.time())
    assert (decision.route, decision.origin) == ("default", "monolith")


def test_once_compiled_the_middleware_reads_no_route_from_the_database(edge_routes, django_assert_num_queries):
    client = Client(raise_request_exception=False)
    client.get("/t/exact-not")  # compiles
    with django_assert_num_queries(0):
        for _ in range(3):
            assert client.get("/t/exact-not")["X-Edge-Route"] == "default"


def test_a_bulk_update_a_delete_a_bulk_create_and_a_new_default_origin_show_at_the_next_request(edge_routes):
    client = Client(raise_request_exception=False)
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "muskie"

    Route.objects.filter(name="muskie").update(enabled=False)  # no signal: the queryset replaces it
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "default"

    Route.objects.filter(name="muskie").update(enabled=True)
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "muskie"

    services.route_delete(actor="merchant", route=Route.objects.get(name="muskie"))
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "default"

    # No signal either: the queryset replaces it.
    Route.objects.bulk_create([Route(name="muskie-again", pattern="/shop/rods/muskie-casting-rod/*", enabled=True)])
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "muskie-again"

    Origin.objects.filter(is_default=True).update(is_default=False)
    hotpath = Origin.objects.get(name="hotpath")
    hotpath.is_default = True
    hotpath.save()
    assert client.get("/no/such/page/").wsgi_request.edge_origin == "hotpath"


def test_without_the_cache_the_middleware_reads_the_routes_for_each_request(edge_routes, monkeypatch):
    def away():
        raise ConnectionError("the cache is away")

    monkeypatch.setattr(selectors, "routes_version", away)
    client = Client(raise_request_exception=False)
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "muskie"
    with connection.cursor() as cursor:  # round Django: no version could tell
        cursor.execute("UPDATE edge_route SET enabled = %s WHERE name = 'muskie'", [False])
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "default"


def test_the_shared_table_saved_in_one_statement_equals_the_one_route_create_makes(db):
    from django.forms.models import model_to_dict
    from django.utils import timezone

    from tests.edge.conftest import create_routes, save_routes

    def table() -> list[dict]:
        return [{k: v for k, v in model_to_dict(r).items() if k != "id"} for r in Route.objects.order_by("position")]

    now = timezone.now()
    create_routes(now=now)
    created = table()
    Route.objects.all().delete()
    save_routes(now=now)
    assert table() == created
    assert len(created) > 20
