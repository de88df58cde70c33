"""Error answers: JSON in one shape under the API prefixes, a null character is a 400 naming
the field, and the error pages render in production without collected static files."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

import pytest
from cryptography.fernet import Fernet
from django.test import Client

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
    ],
)
def test_api_errors_are_json_in_one_shape(client, db, method, url, status):
    assert_error_shape(getattr(client, method)(url), status)


def test_a_405_keeps_its_allow_header(client, db):
    response = client.get("/shop/rods/muskie-casting-rod/orders")

    assert_error_shape(response, 405)
    assert "POST" in response["Allow"]


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
    }
    base = processes.gunicorn("config.wsgi_monolith", env, workers=1, threads=2)

    page = fetch(f"{base}/no-such-page/")
    api = fetch(f"{base}/api/no-such-thing")

    assert page[0] == 404 and "That one got away" in page[1]
    assert api[0] == 404 and json.loads(api[1])["error"] == "not_found"


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
