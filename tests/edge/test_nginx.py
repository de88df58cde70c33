"""The exported nginx configuration, loaded by a real nginx on loopback in front of echo
backends (one per origin): the shared cases, the canary cookie, a reload under load."""

from __future__ import annotations

import random
import re
import threading

import pytest
from django.core.management import call_command

from edge import matcher, services
from edge.exporters.nginx import integer_range_regex
from edge.models import Route
from tests.conftest import eventually
from tests.edge.cases import CASES, Case
from tests.edge.routers import Outcome, expected


def export_to(nginx) -> None:
    out = nginx.root / "export"
    call_command("edge_export", "--target", "nginx", "--out", str(out), "--nginx-listen", f"127.0.0.1:{nginx.port}")
    # The include is swapped in one rename, as a deploy would, so a reload never reads half a file.
    (out / "nginx-edge.conf").replace(nginx.include)


def via_nginx(nginx, case: Case) -> Outcome:
    headers = {}
    if case.cookie:
        headers["Cookie"] = f"sessionid=abc; edge_canary={case.cookie}"
    if case.tester:
        headers["X-Edge-Canary"] = case.tester
    if case.secret:
        headers["X-Edge-Canary-Secret"] = case.secret
    response = nginx.get(case.uri, headers)
    route = response.getheader("X-Edge-Route")
    if response.status in (301, 302, 307, 308):
        return Outcome(route, None, (response.status, response.getheader("Location")))
    assert response.status == 200, (case.uri, response.status, response.body)
    return Outcome(route, response.getheader("X-Origin"))


@pytest.fixture
def routed_nginx(echo_origins, edge_routes, nginx):
    export_to(nginx)
    nginx.test_config()
    nginx.start()
    return nginx


def test_nginx_decides_every_shared_case(routed_nginx):
    mismatches = [
        f"{case.id}: nginx {got}, expected {want}"
        for case in CASES
        if (got := via_nginx(routed_nginx, case)) != (want := expected(case))
    ]
    assert not mismatches, "\n".join(mismatches)
    assert len(CASES) >= 60


def test_nginx_passes_the_request_unchanged_to_the_origin(routed_nginx):
    response = routed_nginx.get("/shop/rods/muskie-casting-rod/orders?x=1&y=%2F")
    assert response.getheader("X-Origin") == "hotpath"
    assert response.getheader("X-Seen-Path") == "/shop/rods/muskie-casting-rod/orders?x=1&y=%2F"
    assert response.getheader("X-Edge-Route") == "muskie"


def test_the_access_log_keeps_no_token_signed_link_or_mailbox(routed_nginx):
    """nginx's `combined` log kept every request line whole: the order status URLs' tokens, the
    signed order links' `access`, a mailbox in a path. The exported format logs each as `-`."""
    secrets = ["St4tusT0ken", "S1gnedAccess", "ann@example.com", "bob%40example.com"]
    for path in (
        "/shop/rods/muskie-casting-rod/orders/T000042/St4tusT0ken",
        "/orders/L000007/?access=S1gnedAccess",
        "/account/email/ann@example.com/confirm",
        "/account/email/bob%40example.com/",
        "/shop/rods/?page=2",
    ):
        routed_nginx.get(path)

    def logged() -> str:
        return (routed_nginx.root / "logs" / "access.log").read_text()

    eventually(lambda: logged().count("\n") >= 5, timeout=10, message="nginx logged nothing")
    log = logged()
    assert not [secret for secret in secrets if secret in log], log
    assert '"GET /shop/rods/muskie-casting-rod/orders/T000042/- HTTP/1.1"' in log
    assert '"GET /orders/L000007/?- HTTP/1.1"' in log and '"GET /account/email/- HTTP/1.1"' in log


def test_nginx_serves_the_directory_index_from_the_s3_origin(routed_nginx):
    response = routed_nginx.get("/t/site/page/")
    assert response.getheader("X-Origin") == "minisite"
    assert response.getheader("X-Seen-Path") == "/t/site/page/index.html"


def test_nginx_gives_a_new_buyer_the_canary_cookie_its_decision_used(routed_nginx):
    sides = set()
    for _ in range(12):
        response = routed_nginx.get("/t/canary/a")
        cookie = response.getheader("Set-Cookie")
        key = re.match(r"edge_canary=([0-9a-f]{32});", cookie).group(1)
        side = "canary" if matcher.in_canary(30, key) else "default"
        assert response.getheader("X-Edge-Route") == side
        sides.add(side)
        again = routed_nginx.get("/t/canary/b", {"Cookie": f"edge_canary={key}"})
        assert again.getheader("X-Edge-Route") == side and again.getheader("Set-Cookie") is None
    assert routed_nginx.get("/shop/rods/muskie-casting-rod/").getheader("Set-Cookie") is None


def test_switching_a_route_off_takes_effect_on_reload_with_no_failed_request(routed_nginx):
    nginx = routed_nginx
    errors: list[str] = []
    seen: list[str] = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                response = nginx.get("/shop/rods/muskie-casting-rod/")
                if response.status != 200:
                    errors.append(f"status {response.status}")
                seen.append(response.getheader("X-Edge-Route"))
            except Exception as exc:  # any failure of a request is what this test counts
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        eventually(lambda: len(seen) > 20, message="nginx answers before the reload")
        services.route_set_enabled(actor="merchant", route=Route.objects.get(name="muskie"), enabled=False)
        export_to(nginx)
        nginx.test_config()
        nginx.reload()
        eventually(lambda: seen[-1] == "default", message="the route is off after the reload")
        count = len(seen)
        eventually(lambda: len(seen) > count + 40, message="requests keep flowing after the reload")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:5]
    assert seen[0] == "muskie" and seen[-1] == "default"
    # Once switched, it stays switched: no worker serves the old routes any more.
    assert set(seen[-20:]) == {"default"}


def test_window_regexes_match_exactly_their_integer_ranges():
    rng = random.Random(302)
    for _ in range(300):
        lo = rng.choice([0, 1, 9, 10, 99, 100, rng.randrange(10**9, 2 * 10**9)])
        hi = lo + rng.choice([0, 1, 9, 10, 11, 99, 1000, 3599, 86400, rng.randrange(10**6)])
        regex = re.compile(f"^{integer_range_regex(lo, hi)}$")
        for value in {lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, rng.randrange(max(lo - 100, 0), hi + 100)}:
            if value >= 0:
                assert bool(regex.match(str(value))) == (lo <= value <= hi), (lo, hi, value)
