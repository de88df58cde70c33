"""The doors around the sale: the origin secret, the canary secret, paths spelt otherwise,
and production settings that refuse what is unsafe."""

from __future__ import annotations

import os
import subprocess

import pytest
from django.test import Client, override_settings

from tests.conftest import PYTHON, ROOT
from tests.edge.cases import CANARY_SECRET, Case
from tests.edge.routers import cf_event, cf_request

STRONG_KEY = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "shop.example.com",
    "CARD_ENCRYPTION_KEY": "ZmVybmV0LWtleS1mb3ItdGhlLWRlcGxveS1jaGVja3M=",  # a Fernet key: 32 bytes
    "LEGACY_API_TOKEN_STOREFRONT": "storefront-token-0123456789abcdefghij",
    "LEGACY_API_TOKEN_HOTPATH": "hotpath-token-0123456789abcdefghij",
}


def django_run(env: dict[str, str], *argv: str, code: str = "") -> subprocess.CompletedProcess:
    """A fresh process with only `env` on top of a clean environment (no pytest's test mode)."""
    base = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "DJANGO_ENV", "DEBUG", "SECRET_KEY"}}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    args = [PYTHON, "manage.py", *argv] if argv else [PYTHON, "-c", code]
    return subprocess.run(args, cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def debug_in(env: dict[str, str], argv: list[str]) -> str:
    code = f"import sys; sys.argv = {argv!r}; import config.settings as s; print(s.DEBUG)"
    done = django_run(env, code=code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# --- Production settings -----------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings():
    done = django_run(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "W004" not in done.stderr and "W008" not in done.stderr


def test_check_deploy_still_catches_a_production_without_https():
    done = django_run({**PRODUCTION, "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"}, "check", "--deploy")
    assert "W004" in done.stderr and "W008" in done.stderr


def test_an_edge_that_redirects_to_https_itself_keeps_hsts_and_secure_cookies():
    code = "import config.settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE)"
    assert django_run({**PRODUCTION, "SECURE_SSL_REDIRECT": "0"}, code=code).stdout.split() == [
        "False",
        str(365 * 24 * 3600),
        "True",
    ]
    # Plain HTTP (the benchmark on loopback): none of the three.
    assert django_run({**PRODUCTION, "SECURE_COOKIES": "0"}, code=code).stdout.split() == ["False", "0", "False"]


@pytest.mark.parametrize(
    "key",
    ["a" * 32, "a" * 60, "abcd" * 20, "dev-only-insecure-key-change-me", "django-insecure-" + STRONG_KEY],
    ids=["32 a", "60 a", "4 distinct", "default", "django-insecure"],
)
def test_production_refuses_a_weak_secret_key(key):
    done = django_run({**PRODUCTION, "SECRET_KEY": key}, code="import django; django.setup()")
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr


def test_production_refuses_any_host():
    done = django_run({**PRODUCTION, "ALLOWED_HOSTS": "*"}, code="import django; django.setup()")
    assert done.returncode != 0 and "ALLOWED_HOSTS" in done.stderr


@pytest.mark.parametrize(
    ("deployment", "needed"),
    [
        ("all", ["LEGACY_API_TOKEN_STOREFRONT", "LEGACY_API_TOKEN_HOTPATH"]),
        ("monolith", ["LEGACY_API_TOKEN_STOREFRONT"]),
        ("hotpath", ["LEGACY_API_TOKEN_HOTPATH"]),
    ],
)
def test_production_refuses_a_deployment_that_places_orders_without_its_legacy_api_token(deployment, needed):
    # Started anyway, every order it took would be refused 401 by the legacy API.
    env = {k: v for k, v in PRODUCTION.items() if not k.startswith("LEGACY_API_TOKEN_")}
    done = django_run({**env, "SHOP_DEPLOYMENT": deployment}, code="import django; django.setup()")
    assert done.returncode != 0
    assert all(name in done.stderr for name in needed), done.stderr
    assert "LEGACY_API_TOKEN_MERCHANT" not in done.stderr
    assert "SHOP_DEPLOYMENT=legacy python manage.py legacy_api_token" in done.stderr  # which starts without them
    given = {name: "t0ken-" + name.lower() for name in needed}
    done = django_run({**env, **given, "SHOP_DEPLOYMENT": deployment}, code="import django; django.setup()")
    assert done.returncode == 0, done.stderr
    # The legacy API's own deployment calls no one.
    done = django_run({**env, "SHOP_DEPLOYMENT": "legacy"}, code="import django; django.setup()")
    assert done.returncode == 0, done.stderr


def test_debug_is_off_unless_asked_for_and_on_for_a_developers_runserver():
    assert debug_in({}, ["gunicorn", "config.wsgi_legacy:application"]) == "False"
    assert debug_in({}, ["celery", "-A", "config", "worker"]) == "False"
    assert debug_in({}, ["manage.py", "runserver"]) == "True"
    assert debug_in({"DEBUG": "1"}, ["gunicorn"]) == "True"
    assert debug_in({"DJANGO_ENV": "test"}, ["manage.py", "runserver"]) == "False"


def test_the_proxy_ssl_header_is_trusted_only_when_named():
    code = "import config.settings as s; print(getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    assert django_run(PRODUCTION, code=code).stdout.strip() == "None"
    named = django_run({**PRODUCTION, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, code=code)
    assert named.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_an_sqs_broker_without_the_queue_url_refuses_to_start():
    env = {"CELERY_BROKER_URL": "sqs://", "ORDERS_QUEUE_URL": ""}
    done = django_run(env, code="import django; django.setup()")
    assert done.returncode != 0 and "ORDERS_QUEUE_URL" in done.stderr


@pytest.mark.slow
def test_the_readmes_server_commands_show_no_debug_page(processes, process_env):
    env = {k: v for k, v in process_env.items() if k not in {"PYTEST_VERSION", "DJANGO_ENV", "DEBUG"}}
    for wsgi, start in (("config.wsgi_legacy", processes.gunicorn), ("config.wsgi_hotpath", processes.granian)):
        url = start(wsgi, env, workers=1, name=wsgi)
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/no/such/page/", timeout=10)
        body = missing.value.read().decode(errors="replace")
        assert missing.value.code == 404
        assert "DEBUG = True" not in body and "URLconf" not in body, wsgi


# --- The origin secret ---------------------------------------------------------------------


@override_settings(EDGE_ORIGIN_SECRET="origin-0123456789abcdef0123456789")
@pytest.mark.parametrize("given", [None, "", "wrong", "origin-0123456789abcdef012345678"])
def test_an_origin_refuses_requests_without_the_edges_secret(db, given):
    headers = {} if given is None else {"X-Origin-Verify": given}
    response = Client().get("/legacy-api/ping", headers=headers)
    assert response.status_code == 403
    assert response.json()["header"] == "X-Origin-Verify"
    page = Client().get("/shop/", headers={**headers, "Accept": "text/html"})
    assert page.status_code == 403 and b"Forbidden" in page.content


@override_settings(EDGE_ORIGIN_SECRET="origin-0123456789abcdef0123456789")
def test_an_origin_serves_requests_with_the_edges_secret(db):
    response = Client().get("/legacy-api/ping", headers={"X-Origin-Verify": "origin-0123456789abcdef0123456789"})
    assert response.status_code == 200


def test_without_an_origin_secret_nothing_is_checked(db):
    assert Client().get("/legacy-api/ping").status_code == 200


# --- Lambda@Edge: the canary secret and paths spelt otherwise -----------------------------------


def test_lambda_edge_sends_a_path_spelt_otherwise_to_its_normal_form(packaged_handler):
    table, handler = packaged_handler
    request = cf_request(Case("/shop/rods/muskie%2Dcasting-rod/orders", "?"))
    request["querystring"] = "a=%2D"
    response = handler(cf_event("viewer-request", request), None)
    assert response["status"] == "308"
    assert response["headers"]["location"][0]["value"] == "/shop/rods/muskie-casting-rod/orders?a=%2D"
    assert response["headers"]["x-shop-route"][0]["value"] == "normalize"


def test_lambda_edge_refuses_a_normal_path_that_cloudfront_would_match_otherwise(packaged_handler):
    _, handler = packaged_handler
    # `?` is one decoded character (the space) but three as written: no spelling routes it right.
    response = handler(cf_event("viewer-request", cf_request(Case("/t/q/file%20.txt", "?"))), None)
    assert response["status"] == "400"
    assert '"path"' in response["body"]


def test_lambda_edge_keeps_the_origin_secret_and_drops_the_canary_secret(packaged_handler):
    table, handler = packaged_handler
    request = cf_request(Case("/t/canary/a", "?", tester="in", secret=CANARY_SECRET))
    request["origin"] = {"custom": {"domainName": "monolith.example", "customHeaders": {"x-origin-verify": [{}]}}}
    result = handler(cf_event("origin-request", request), None)
    assert result["origin"]["custom"]["domainName"] == table["origins"]["hotpath"]["domain"]
    assert result["origin"]["custom"]["customHeaders"] == {"x-origin-verify": [{}]}
    assert "x-shop-canary-secret" not in result["headers"]


@pytest.fixture(scope="module")
def packaged_handler(shared_export, tmp_path_factory):
    from tests.edge.routers import load_lambda_package

    table, out = shared_export
    return table, load_lambda_package((out / "lambda-edge.zip").read_bytes(), tmp_path_factory.mktemp("package"))
