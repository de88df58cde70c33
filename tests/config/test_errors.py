"""Error answers: JSON in one shape under the API prefixes, a null character is a 400 naming
the field, and the error pages are the shop's pages: with its header on the storefront, with no
database, cache or context processor for a 500, and in production without collected static
files."""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.test import Client, RequestFactory

from config import errors
from shop.models import Basket, BasketLine, Category, Product


def assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    assert all(isinstance(messages, list) for messages in body.get("fields", {}).values())
    return body


@pytest.fixture
def reel(db) -> Product:
    reels = Category.objects.create(name="Reels", slug="reels")
    return Product.objects.create(
        category=reels, title="Spinning Reel", slug="spinning-reel", price_cents=2999, stock=5
    )


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/api/no-such-thing", 404),
        ("get", "/legacy-api/no-such-thing", 404),
        ("get", "/shop/rods/muskie-casting-rod/orders/T000001/short", 404),
        ("get", "/shop/rods/muskie-casting-rod/orders", 405),
        ("put", "/api/basket/items", 405),
        ("get", "/api", 404),
        ("get", "/shop/rods/muskie-casting-rod/stock/", 404),
    ],
)
def test_api_errors_are_json_in_one_shape(client, db, method, url, status):
    assert_error_shape(getattr(client, method)(url), status)


def test_a_405_keeps_its_allow_header(client, db):
    response = client.get("/shop/rods/muskie-casting-rod/orders")

    assert_error_shape(response, 405)
    assert "POST" in response["Allow"]


def test_a_stale_form_is_answered_with_the_shops_page_telling_to_reload_it(db, reel, settings):
    settings.DEBUG = False
    cache.clear()  # the header's categories, as this test's database has them
    response = Client(enforce_csrf_checks=True).post("/basket/add/", {"product": reel.pk, "quantity": 1})

    assert response.status_code == 403
    page = response.content.decode()
    assert "That form has gone stale." in page and "reload the page" in page
    assert 'href="/shop/reels/"' in page  # the shop's header, with its categories
    assert not BasketLine.objects.exists()


def test_a_basket_post_without_csrf_is_a_json_403(db, reel):
    response = Client(enforce_csrf_checks=True).post(
        "/api/basket/items", {"product": "spinning-reel", "quantity": 1}, content_type="application/json"
    )

    assert assert_error_shape(response, 403)["error"] == "csrf_failed"
    assert not BasketLine.objects.exists()


def test_a_null_character_in_a_json_string_is_a_400_naming_the_field(client, reel):
    body = json.dumps({"product": "spinning\u0000reel", "quantity": 1})

    response = client.post("/api/basket/items", body, content_type="application/json")

    assert assert_error_shape(response, 400)["fields"] == {"product": ["Must not contain a null character."]}
    assert not Basket.objects.exists()


def test_a_null_character_deep_in_a_body_is_named_by_its_path(client, db):
    body = json.dumps({"quantity": 1, "customer": {"name": "Ann\u0000", "email": "a@example.com"}})

    response = client.post("/shop/rods/muskie-casting-rod/orders", body, content_type="application/json")

    assert list(assert_error_shape(response, 400)["fields"]) == ["customer.name"]


@pytest.mark.parametrize("url", ["/orders/%00/", "/shop/%00/", "/shop/?q=%00"])
def test_a_null_character_in_a_page_address_is_a_400_page(client, db, url):
    response = client.get(url)

    assert response.status_code == 400
    assert "tangled" in response.content.decode()


def test_a_null_character_in_an_api_address_is_a_json_400(client, db):
    body = assert_error_shape(client.delete("/api/basket/items/spin%00ning"), 400)

    assert body["fields"] == {"path": ["Must not contain a null character."]}


@pytest.mark.parametrize(
    ("method", "url", "header", "value"),
    [
        ("get", "/basket/", "HTTP_COOKIE", "sessionid=abcdefgh\x00ijkl"),
        ("post", "/accounts/login/", "HTTP_USER_AGENT", "probe\x00"),
    ],
)
def test_a_null_character_in_a_header_is_a_400_page_not_a_500(client, db, method, url, header, value):
    """The session's key looked up, django-axes' record of a wrong password: PostgreSQL stores no
    such text, and every page was a 500 for a browser sending one."""
    response = getattr(client, method)(
        url, {"username": "ann", "password": "wrong"} if method == "post" else {}, **{header: value}
    )

    assert response.status_code == 400
    assert "tangled" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "header", "value", "named"),
    [
        ("/api/basket/items", "HTTP_COOKIE", "sessionid=abcdefgh\x00ijkl", "Cookie"),
        ("/shop/reels/spinning-reel/orders", "HTTP_IDEMPOTENCY_KEY", "ann\x00-1", "Idempotency-Key"),
    ],
)
def test_a_null_character_in_an_api_header_is_a_json_400_naming_it(client, reel, url, header, value, named):
    customer = {"name": "Ann", "email": "a@example.com"}
    body = json.dumps({"product": "spinning-reel", "quantity": 1, "customer": customer})

    response = client.post(url, body, content_type="application/json", **{header: value})

    assert assert_error_shape(response, 400)["fields"] == {named: ["Must not contain a null character."]}
    assert not Basket.objects.exists()


@pytest.mark.parametrize("url", ["/api/basket/items", "/legacy-api/orders", "/shop/rods/muskie-casting-rod/orders"])
@pytest.mark.parametrize("length", ["abc", "1e3", "15 bytes"])
def test_a_content_length_that_is_no_number_is_a_json_400_naming_it(client, db, url, length):
    """Django reads it with int() as it reads the body: a ValueError, a 500 (runserver passes it on)."""
    response = client.post(url, '{"quantity": 1}', content_type="application/json", CONTENT_LENGTH=length)

    assert assert_error_shape(response, 400)["fields"] == {"Content-Length": ["Must be a number of bytes."]}


def test_a_form_with_a_content_length_that_is_no_number_is_a_400_page(client, db):
    body = "username=ann&password=wrong"

    response = client.post("/accounts/login/", body, "application/x-www-form-urlencoded", CONTENT_LENGTH="abc")

    assert response.status_code == 400
    assert "tangled" in response.content.decode()


@pytest.mark.parametrize("url", ["/accounts/login/", "/orders/lookup/"])
def test_a_form_posted_in_utf_7_is_a_400_page_not_a_500(client, db, url):
    """UTF-7 decodes "+2AA-" to a lone surrogate, which nothing downstream can encode."""
    body = b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\n+2AA-\r\n--b--\r\n'

    response = client.post(url, body, content_type="multipart/form-data; boundary=b; charset=utf-7")

    assert response.status_code == 400


def test_a_form_in_utf_8_is_not_refused_for_its_charset(client, db):
    response = client.post(
        "/accounts/login/", "username=ann&password=x", content_type="application/x-www-form-urlencoded; charset=UTF-8"
    )

    assert response.status_code != 400


def test_a_body_over_the_limit_is_a_json_413_without_a_traceback(client, db, caplog):
    response = client.post(
        "/api/basket/items", b'{"product": "' + b"x" * 1024 * 1024 + b'"}', content_type="application/json"
    )

    assert_error_shape(response, 413)
    assert not [record for record in caplog.records if record.exc_info]


SHOP_HEADER = '<a class="brand" href="/shop/">'


def assert_shop_page(html: str) -> None:
    """The shop's header (its home link, stylesheet, Find an order, basket) and footer, and the
    way back to the shop."""
    assert SHOP_HEADER in html and 'href="/shop/"' in html
    assert "/static/shop/shop.css" in html
    assert 'href="/orders/lookup/"' in html and 'href="/basket/"' in html
    assert 'class="site-footer"' in html
    assert "Back to the shop" in html


def test_a_404_on_the_storefront_is_a_page_of_the_shop_with_its_categories(client, reel):
    cache.clear()  # the header's categories are kept there, past each test's database

    response = client.get("/shop/no-such-water/")

    html = response.content.decode()
    assert response.status_code == 404 and "That one got away" in html
    assert_shop_page(html)
    assert 'href="/shop/reels/">Reels</a>' in html


@pytest.mark.parametrize("away", ["database", "cache"])
def test_a_page_whose_database_or_cache_is_away_is_the_shop_s_503_saying_so(away):
    """A PostgreSQL or Redis restart is a moment's wait, not "something went wrong" (a 500)."""
    import redis
    from django.db import OperationalError

    exception = OperationalError("server closed the connection") if away == "database" else redis.ConnectionError()
    middleware = errors.ApiErrorMiddleware(lambda request: None)

    response = middleware.process_exception(RequestFactory().get("/shop/reels/"), exception)

    html = response.content.decode()
    assert response.status_code == 503 and "Back in a moment" in html
    assert int(response["Retry-After"]) > 0 and response["Cache-Control"] == "no-store"
    assert_shop_page(html)
    # Anything else is still the 500 page's to say.
    assert middleware.process_exception(RequestFactory().get("/shop/reels/"), ValueError()) is None


def test_a_failed_post_is_never_told_nothing_was_changed(settings):
    """A checkout whose database went away after the legacy API had placed and charged its order
    was told "nothing was changed", then emailed that the order was confirmed. A request that
    writes is told it may have gone through, and to send it again (placed and charged once)."""
    from django.db import OperationalError

    middleware = errors.ApiErrorMiddleware(lambda request: None)
    away = OperationalError("server closed the connection")
    factory = RequestFactory()

    for failed in (
        middleware.process_exception(factory.post("/checkout/"), away),
        errors.handler500(factory.post("/checkout/")),
    ):
        html = failed.content.decode()
        assert "nothing was changed" not in html and "may have gone through" in html
        assert "placed and charged only once" in html
    for page in (middleware.process_exception(factory.get("/shop/reels/"), away), errors.handler500(factory.get("/"))):
        assert "nothing was changed" in page.content.decode()
    for status, answer in (
        (503, middleware.process_exception(factory.post("/shop/rods/muskie-casting-rod/orders"), away)),
        (500, middleware.process_exception(factory.post("/api/basket/items"), ValueError())),
    ):
        assert answer.status_code == status and "may have gone through" in json.loads(answer.content)["detail"]
    legacy = json.loads(middleware.process_exception(factory.post("/legacy-api/orders"), away).content)["detail"]
    assert "the same reference" in legacy and "Idempotency-Key" not in legacy  # keyed by its body's
    read = middleware.process_exception(factory.get("/api/basket"), away)
    assert json.loads(read.content)["detail"] == errors.ERROR_CODES[503][1]


def test_the_500_page_renders_without_the_database_the_cache_or_the_context_processors(settings):
    """No `db` fixture: any query fails the render (and the page would fall back to plain text)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "OPTIONS": {"context_processors": ["tests.config.test_errors.failing_processor"]}}
    ]

    response = errors.handler500(RequestFactory().get("/shop/reels/"))

    html = response.content.decode()
    assert response.status_code == 500 and "Our line snapped" in html
    assert_shop_page(html)


def failing_processor(request):
    raise RuntimeError("a context processor that fails")


@pytest.mark.parametrize("urlconf", ["config.urls_hotpath", "config.urls_legacy"])
def test_a_404_of_the_hot_path_or_the_legacy_api_looks_like_the_shop_and_reads_no_table(
    reel, urlconf, django_assert_num_queries
):
    request = RequestFactory().get("/shop/rods/muskie-casting-rod/no-such-page")
    request.urlconf = urlconf

    with django_assert_num_queries(0):
        response = errors.handler404(request)

    html = response.content.decode()
    assert response.status_code == 404
    assert_shop_page(html)
    assert "Reels" not in html  # the storefront's categories are not read there


@pytest.mark.postgres
def test_error_pages_render_in_production_without_collected_static_files(processes, process_env, tmp_path):
    env = {
        **process_env,
        "DJANGO_ENV": "production",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "VAR_DIR": str(tmp_path / "var"),  # an empty STATIC_ROOT: collectstatic never ran
        "SHOP_DEPLOYMENT": "monolith",
        "LEGACY_API_TOKEN_STOREFRONT": secrets.token_urlsafe(32),
    }
    base = processes.gunicorn("config.wsgi_monolith", env, workers=1, threads=2)

    page = fetch(f"{base}/no-such-page/")
    api = fetch(f"{base}/api/no-such-thing")

    assert page[0] == 404 and "That one got away" in page[1]
    assert SHOP_HEADER in page[1]
    assert api[0] == 404 and json.loads(api[1])["error"] == "not_found"
    # The shop's stylesheet, which the page names, is served all the same.
    assert fetch(base + re.search(r'href="(/static/shop/shop[^"]*\.css)"', page[1]).group(1))[0] == 200


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
