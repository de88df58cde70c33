"""The Django middleware router: the shared cases, switching a route off, never failing."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from edge import services
from edge.models import Route
from tests.edge.cases import CASES, Case
from tests.edge.routers import Outcome, expected


def middleware(client: Client, case: Case) -> Outcome:
    if case.cookie:
        client.cookies["edge_canary"] = case.cookie
    headers = {"X-Edge-Canary": case.tester} if case.tester else {}
    if case.secret:
        headers["X-Edge-Canary-Secret"] = case.secret
    response = client.get(case.uri, headers=headers)
    route = response["X-Edge-Route"]
    if response.status_code in (301, 302, 307, 308) and route != "default":
        return Outcome(route, None, (response.status_code, response["Location"]))
    request = response.wsgi_request
    if request.edge_origin == "hotpath":
        assert request.urlconf == "config.urls_hotpath", "hot path requests are served by the hot path's URLconf"
    return Outcome(route, request.edge_origin)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_middleware_decides_each_shared_case(shared_routes, case):
    assert middleware(Client(raise_request_exception=False), case) == expected(case), case.why


def test_a_route_switched_off_stops_matching_on_the_next_request(edge_routes):
    client = Client(raise_request_exception=False)
    assert client.get("/shop/rods/muskie-casting-rod/")["X-Edge-Route"] == "muskie"
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)
    response = client.get("/shop/rods/muskie-casting-rod/")
    assert response["X-Edge-Route"] == "default"
    assert response.wsgi_request.edge_origin == "monolith"


def test_a_new_buyer_reaching_a_canary_gets_the_cookie_the_decision_used(edge_routes):
    from edge import matcher

    for _ in range(5):
        client = Client(raise_request_exception=False)
        response = client.get("/t/canary/a")
        key = response.cookies["edge_canary"].value
        inside = matcher.in_canary(30, key)
        assert response["X-Edge-Route"] == ("canary" if inside else "default")
        # The same buyer stays on the same side.
        assert client.get("/t/canary/b")["X-Edge-Route"] == response["X-Edge-Route"]
        assert "edge_canary" not in client.get("/t/canary/b").cookies


def test_no_canary_cookie_is_set_where_no_canary_route_is_reached(edge_routes):
    response = Client().get("/shop/rods/muskie-casting-rod/")
    assert "edge_canary" not in response.cookies


def test_the_mini_site_origin_serves_the_rendered_buy_now_page(db):
    from shop.models import Category, Product
    from tests.edge.conftest import ensure_origins

    ensure_origins()
    rods = Category.objects.create(name="Rods", slug="rods")
    Product.objects.create(category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999)
    services.route_create(
        actor="t", name="muskie-site", pattern="/shop/rods/muskie-casting-rod/*", origin="minisite", enabled=True
    )
    response = Client().get("/shop/rods/muskie-casting-rod/")
    assert response.status_code == 200
    assert response["X-Edge-Route"] == "muskie-site"
    assert b"Muskie Casting Rod" in response.content and b"149.99" in response.content
    assert b'<header class="site-header">' in response.content  # the shop's sale page, not a bare one


def test_every_response_carries_the_route_header_even_without_routes(db):
    response = Client(raise_request_exception=False).get("/no/such/page/")
    assert response["X-Edge-Route"] == "default"


def test_a_broken_route_table_never_breaks_the_request(edge_routes, monkeypatch):
    from edge import selectors

    def broken():
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(selectors, "enabled_routes", broken)
    response = Client(raise_request_exception=False).get("/shop/rods/muskie-casting-rod/")
    assert response["X-Edge-Route"] == "default"
    assert response.status_code != 500


@override_settings(EDGE_ROUTER_ENABLED=False)
def test_the_router_stays_out_of_deployments_where_it_is_disabled(edge_routes):
    response = Client(raise_request_exception=False).get("/shop/rods/muskie-casting-rod/")
    assert "X-Edge-Route" not in response


@pytest.mark.slow
def test_in_the_all_in_one_server_a_route_switched_off_is_off_for_every_worker_at_once(processes, process_env):
    import urllib.error
    import urllib.request

    from tests.edge.conftest import ensure_origins

    ensure_origins()
    services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    url = processes.gunicorn("config.wsgi", process_env, workers=3, threads=2)

    def routes_seen(count: int) -> set[str]:
        seen = set()
        for _ in range(count):
            try:
                # A worker's first request warms it up: seconds on a machine busy with other tests.
                response = urllib.request.urlopen(f"{url}/shop/rods/muskie-casting-rod/", timeout=30)
            except urllib.error.HTTPError as exc:  # the hot path may answer 404 for a product not on sale
                response = exc
            seen.add(response.headers["X-Edge-Route"])
        return seen

    assert routes_seen(12) == {"muskie"}
    services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)
    assert routes_seen(12) == {"default"}
