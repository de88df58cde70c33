"""The catalogue pages' content kept per catalogue version (shop.page_cache): stock as fresh as
its last logged change and prices as the database, nobody's header or basket in another
shopper's page, the CSRF token of the page's own session, and no query for a page already
rendered while its stock has not moved."""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.request
from urllib.parse import quote

import pytest
from django.db import connection, transaction
from django.test import Client

from shop import page_cache
from shop.models import Product
from shop.stock import stock_changed_append

PAGES = ("/shop/", "/shop/rods/", "/shop/rods/badge-rod/")


def html_of(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _stock_moved(product: Product, *, stock: int | None = None, held: int | None = None) -> None:
    """As the legacy API moves stock: an update of the counters (which replaces no catalogue
    version) and its STOCK event, in one transaction."""
    before = Product.objects.get(pk=product.pk)
    stock = before.stock if stock is None else stock
    held = before.held if held is None else held
    with transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock=stock, held=held)
        stock_changed_append(
            source="legacy.api",
            product=product.slug,
            on_hand=stock,
            held=held,
            delta=stock - before.stock,
            held_delta=held - before.held,
            reason="order",
        )


def test_a_kept_page_shows_a_stock_change_at_once(client, make_product, django_capture_on_commit_callbacks):
    rod = make_product("badge-rod", title="Badge Rod", stock=10, is_featured=True)
    for url in PAGES:
        assert "In stock" in html_of(client, url)

    with django_capture_on_commit_callbacks(execute=True):
        _stock_moved(rod, stock=3)
    for url in PAGES:
        assert "Only 3 left" in html_of(client, url)
    assert 'max="3"' in html_of(client, "/shop/rods/badge-rod/")

    with django_capture_on_commit_callbacks(execute=True):
        _stock_moved(rod, held=3)
    for url in PAGES:
        html = html_of(client, url)
        assert "Sold out" in html and "Only 3 left" not in html
    assert 'class="product-card is-sold-out"' in html_of(client, "/shop/rods/")
    product_page = html_of(client, "/shop/rods/badge-rod/")
    assert 'action="/basket/add/"' not in product_page and "Sold out for now" in product_page


def test_stock_is_kept_until_the_stamp_moves_and_no_longer_than_its_age(client, make_product, monkeypatch):
    rod = make_product("badge-rod", title="Badge Rod", stock=10, is_featured=True)
    assert "In stock" in html_of(client, "/shop/rods/")

    # Not yet committed (the stamp moves at the commit): the page keeps what it read.
    with transaction.atomic():
        _stock_moved(rod, stock=3)
    assert "In stock" in html_of(client, "/shop/rods/")
    # A change that logged nothing, or a stamp that could not move, shows once the read is old.
    monotonic = time.monotonic
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: monotonic() + page_cache.STOCK_MAX_AGE_SECONDS + 1)
    assert "Only 3 left" in html_of(client, "/shop/rods/")


def test_without_a_readable_stamp_stock_is_read_every_time(client, make_product, monkeypatch):
    rod = make_product("badge-rod", title="Badge Rod", stock=10, is_featured=True)
    reading = page_cache.reading
    monkeypatch.setattr(page_cache, "reading", lambda: dataclasses.replace(reading(), stamp=None))
    monkeypatch.setattr(page_cache, "stock_stamp", lambda: None)
    assert "In stock" in html_of(client, "/shop/rods/")
    Product.objects.filter(pk=rod.pk).update(stock=3)
    assert "Only 3 left" in html_of(client, "/shop/rods/")


def test_a_kept_page_shows_a_price_or_title_change_at_once(client, make_product):
    rod = make_product("badge-rod", title="Badge Rod", price_cents=4999, is_featured=True)
    for url in PAGES:
        assert "$49.99" in html_of(client, url)

    rod.price_cents = 5999
    rod.title = "Badge Rod II"
    rod.save()
    for url in PAGES:
        html = html_of(client, url)
        assert "$59.99" in html and "$49.99" not in html and "Badge Rod II" in html

    # A merchant's bulk action (a queryset update sends no signal) too.
    Product.objects.filter(pk=rod.pk).update(price_cents=6999)
    for url in PAGES:
        assert "$69.99" in html_of(client, url)


def test_a_kept_page_reads_no_database_until_stock_moves_then_one_query(
    client,
    make_product,
    django_assert_num_queries,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
    settings,
):
    settings.EDGE_ROUTER_ENABLED = False  # as the monolith serves it (the edge is nginx or CloudFront)
    rod = make_product("badge-rod", is_featured=True)
    make_product("other-rod")
    for url in PAGES:
        html_of(client, url)  # rendered and kept, with its stock
        with django_assert_num_queries(0):
            html_of(client, url)
    with django_capture_on_commit_callbacks(execute=True):
        _stock_moved(rod, stock=4)
    with django_assert_num_queries(1):
        assert "Only 4 left" in html_of(client, PAGES[0])
    for url in PAGES[1:]:  # one query each at most: pages showing the same products share it
        with django_assert_max_num_queries(1):
            assert "Only 4 left" in html_of(client, url)


def test_pages_kept_together_are_not_all_rendered_again_at_once():
    ttls = [page_cache.content_parse("<p>page</p>").ttl for _ in range(40)]
    assert all(0.75 * page_cache.PAGE_TTL_SECONDS <= ttl <= page_cache.PAGE_TTL_SECONDS for ttl in ttls)
    assert len(set(ttls)) > 10


def test_a_kept_page_costs_one_cache_round_trip(client, make_product, monkeypatch, settings):
    # Each round trip is a wait for the cache server, and during a sale every wait is longer.
    settings.EDGE_ROUTER_ENABLED = False  # as the monolith serves it (the edge is nginx or CloudFront)
    make_product("badge-rod", is_featured=True)
    calls, inside = [], []

    def counted(name, method):
        def call(*args, **kwargs):
            if not inside:  # a backend without get_many of its own makes it of gets
                calls.append(name)
            inside.append(name)
            try:
                return method(*args, **kwargs)
            finally:
                inside.pop()

        return call

    for name in ("get", "get_many", "add", "set", "set_many", "incr", "delete"):
        monkeypatch.setattr(page_cache.cache, name, counted(name, getattr(page_cache.cache, name)))
    for url in PAGES:
        html_of(client, url)  # rendered and kept, with its stock
        calls.clear()
        html_of(client, url)
        assert calls == ["get_many"], (url, calls)


def test_a_signed_in_shopper_s_header_and_basket_never_reach_another_shopper(client, make_product, customer):
    make_product("badge-rod", is_featured=True)
    angler = Client()
    angler.force_login(customer)
    angler.post("/basket/add/", {"product": "badge-rod", "quantity": 2})
    for url in PAGES:
        assert "Sign out" in html_of(angler, url)
        assert 'aria-label="2 items in basket"' in html_of(angler, url)

        html = html_of(client, url)
        assert "Sign out" not in html and "My orders" not in html and "Sign in" in html
        assert 'aria-label="0 items in basket"' in html


def test_the_add_form_of_a_kept_page_carries_this_session_s_csrf_token(make_product):
    make_product("badge-rod")
    tokens = []
    for _ in range(2):
        shopper = Client(enforce_csrf_checks=True)
        html = html_of(shopper, "/shop/rods/badge-rod/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        tokens.append(token)
        response = shopper.post("/basket/add/", {"product": "badge-rod", "quantity": 1, "csrfmiddlewaretoken": token})
        assert response.status_code == 302 and response["Location"] == "/basket/"
    assert tokens[0] != tokens[1]
    # Another session's token is refused.
    stranger = Client(enforce_csrf_checks=True)
    html_of(stranger, "/shop/rods/badge-rod/")
    assert stranger.post("/basket/add/", {"product": "badge-rod", "csrfmiddlewaretoken": tokens[0]}).status_code == 403


def test_no_text_of_the_catalogue_can_open_a_hole(client, make_product):
    marker = str(page_cache.hole("badge", 1)).replace("\x00", "")
    rod = make_product("badge-rod")
    rod.description = f"Looks like {marker} but is text."
    rod.save()

    html = html_of(client, "/shop/rods/badge-rod/")

    assert f"Looks like {marker} but is text." in html


@pytest.mark.slow
def test_a_price_changed_elsewhere_shows_on_the_next_view_of_a_server_that_kept_the_page(
    processes, process_env, make_product
):
    rod = make_product("badge-rod", price_cents=4999)
    url = processes.gunicorn("config.wsgi_monolith", {**process_env, "SHOP_DEPLOYMENT": "monolith"}, workers=1)

    def page() -> str:
        return urllib.request.urlopen(f"{url}/shop/rods/badge-rod/", timeout=10).read().decode()

    assert "$49.99" in page() and "$49.99" in page()  # the second view is the kept page
    rod.price_cents = 5999
    rod.save()  # committed: the catalogue's version is replaced for every process

    assert "$59.99" in page()


def test_without_the_cache_the_pages_are_rendered_for_each_view(client, make_product, monkeypatch):
    rod = make_product("badge-rod", price_cents=4999)

    def away():
        raise ConnectionError("the cache is away")

    monkeypatch.setattr(page_cache, "catalogue_version", away)
    for name in ("get", "get_many"):
        monkeypatch.setattr(page_cache.cache, name, lambda *args, **kwargs: away())
    assert "$49.99" in html_of(client, "/shop/rods/badge-rod/")
    # Nothing was kept under no version: a change that goes round Django shows at once.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET price_cents = 5999 WHERE id = %s", [rod.pk])
    assert "$59.99" in html_of(client, "/shop/rods/badge-rod/")
    # Nor its stock.
    Product.objects.filter(pk=rod.pk).update(stock=3)
    assert "Only 3 left" in html_of(client, "/shop/rods/badge-rod/")


def test_a_shopper_without_a_session_gets_the_whole_page_kept_with_a_working_csrf_token(make_product, settings):
    from django.test.signals import template_rendered

    settings.EDGE_ROUTER_ENABLED = False
    make_product("badge-rod")
    shopper = Client(enforce_csrf_checks=True)
    rendered = []

    def seen(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(seen)
    try:
        html_of(shopper, "/shop/rods/")  # rendered and kept, frame and all
        assert "shop/base.html" in rendered
        rendered.clear()
        response = shopper.get("/shop/rods/")
    finally:
        template_rendered.disconnect(seen)
    assert rendered == []
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', response.content.decode()).group(1)
    api = shopper.post(
        "/api/basket/items",
        {"product": "badge-rod", "quantity": 1},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert api.status_code == 200
    # Now with a session (the basket), the frame is this shopper's own.
    assert 'aria-label="1 item in basket"' in html_of(shopper, "/shop/rods/")


def test_the_sign_in_link_of_a_kept_page_comes_back_to_its_own_address(client, make_product):
    make_product("badge-rod")
    for url in ("/shop/rods/?sort=price", "/shop/rods/?sort=title", "/shop/rods/"):
        html_of(client, url)
        html = html_of(client, url)
        assert f'href="/accounts/login/?next={quote(url, safe="/")}"' in html


def _kept_pages_aged(seconds_past_their_time: float) -> None:
    with page_cache._lock:
        for content in page_cache._pages.values():
            content.made -= content.ttl + seconds_past_their_time


def _price_changed_round_django(rod: Product, cents: int) -> None:
    with connection.cursor() as cursor:  # replaces no catalogue version
        cursor.execute("UPDATE shop_product SET price_cents = %s WHERE id = %s", [cents, rod.pk])


def test_a_page_past_its_time_is_served_once_more_and_rendered_again_after_the_answer(
    make_product, settings, monkeypatch
):
    """Under a sale's load a render is a slow page view: the shopper who finds a page past its
    time gets it as kept, and the render happens once that answer is sent."""
    settings.EDGE_ROUTER_ENABLED = False
    rod = make_product("badge-rod", price_cents=4999)
    shopper = Client()
    url = "/shop/rods/badge-rod/"
    assert "$49.99" in html_of(shopper, url)
    _price_changed_round_django(rod, 5999)
    _kept_pages_aged(1)

    renders = []
    answered = []
    build = page_cache._content_build

    def counted(*args, **kwargs):
        renders.append(bool(answered))  # True: after the response was written
        return build(*args, **kwargs)

    monkeypatch.setattr(page_cache, "_content_build", counted)
    original_run = page_cache.renewals_run

    def after_answer(**kwargs):
        answered.append(True)
        original_run(**kwargs)

    monkeypatch.setattr(page_cache, "renewals_run", after_answer)
    from django.core.signals import request_finished

    request_finished.disconnect(dispatch_uid="shop.page_renewals")
    request_finished.connect(page_cache.renewals_run, dispatch_uid="test.page_renewals")
    try:
        stale = html_of(shopper, url)
    finally:
        request_finished.disconnect(dispatch_uid="test.page_renewals")
        request_finished.connect(original_run, dispatch_uid="shop.page_renewals")
    assert "$49.99" in stale  # as kept: the shopper did not wait for a render
    assert renders and all(renders), "every render came after the answer"
    assert "$59.99" in html_of(shopper, url)  # the render done after the answer is kept


def test_a_page_nobody_viewed_for_twice_its_time_is_rendered_while_the_shopper_waits(make_product, settings):
    settings.EDGE_ROUTER_ENABLED = False
    rod = make_product("badge-rod", price_cents=4999)
    url = "/shop/rods/badge-rod/"
    assert "$49.99" in html_of(Client(), url)
    _price_changed_round_django(rod, 5999)
    _kept_pages_aged(page_cache.PAGE_TTL_SECONDS + 1)
    assert "$59.99" in html_of(Client(), url)


def test_a_page_that_fails_to_render_again_is_dropped_and_the_answer_stands(make_product, settings, monkeypatch):
    settings.EDGE_ROUTER_ENABLED = False
    make_product("badge-rod", price_cents=4999)
    url = "/shop/rods/badge-rod/"
    html_of(Client(), url)
    _kept_pages_aged(1)
    kept = len(page_cache._pages)

    def broken(*args, **kwargs):
        raise RuntimeError("the template engine broke")

    monkeypatch.setattr(page_cache, "content_parse", broken)
    assert "$49.99" in html_of(Client(), url)  # served as kept; the render after it failed
    assert len(page_cache._pages) < kept
