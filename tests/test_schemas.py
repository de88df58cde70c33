"""The published API contracts hold: schemathesis runs each OpenAPI schema (the hot path, the
basket API, the legacy API) against a real gunicorn serving it, in a bounded quick mode, and
finds no 5xx, no answer outside its schema and no bad input accepted."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest

from tests.conftest import BIN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

# Bounded, so CI stays quick: a handful of generated cases per operation, besides the examples
# and the coverage phase's boundary values (every min, max, pattern and required field).
MAX_EXAMPLES = 8
SEED = 1
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
    ]
)
# A fixed CSRF secret sent as both cookie and header is what a page script sends (Django
# compares the two); the basket API's writes are checked, not only what an anonymous GET does.
CSRF_SECRET = "schemacheckcsrfsecret0123456789a"


def schemathesis_run(schema_url: str, base: str, *headers: str, cwd, timeout: float = 240) -> None:
    argv = [str(BIN / "schemathesis"), "--no-color", "run", schema_url, "--url", base, "--checks", CHECKS]
    argv += ["--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1"]
    argv += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--suppress-health-check", "all"]
    for header in headers:
        argv += ["--header", header]
    # Its cache and reports go to the test's own folder.
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    # A run that tested nothing would also exit 0.
    assert " passed" in output or "Test cases:" in output, output[-4000:]


def get_json_status(url: str, *headers: tuple[str, str]) -> int:
    request = urllib.request.Request(url, headers=dict(headers))
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.fixture
def catalogue(transactional_db):
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    reels = Category.objects.create(name="Reels", slug="reels")
    Product.objects.create(
        category=rods, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999, stock=100_000
    )
    Product.objects.create(category=reels, title="Spinning Reel", slug="spinning-reel", price_cents=2999, stock=50)
    return rods


def test_hot_path_answers_as_its_schema_says(catalogue, process_env, processes, tmp_path):
    from orders.models import SaleAllocation
    from shop.models import Product

    rod = Product.objects.get(slug="muskie-casting-rod")
    SaleAllocation.objects.create(product=rod, is_hot=True, allocated=50_000, per_order_limit=3)
    # Throttles high enough that acceptance itself is exercised, not only the 429.
    env = {**process_env, "ORDERS_THROTTLE_PER_IP": "100000", "ORDERS_THROTTLE_PER_EMAIL": "100000"}
    base = processes.gunicorn("config.wsgi_hotpath", env, workers=1, threads=4, name="hotpath")
    schema_url = f"{base}/shop/rods/muskie-casting-rod/orders/schema"
    assert get_json_status(schema_url) == 200
    schemathesis_run(schema_url, base, cwd=tmp_path)


def test_basket_api_answers_as_its_schema_says(catalogue, process_env, processes, tmp_path):
    base = processes.gunicorn("config.wsgi_monolith", process_env, workers=1, threads=4, name="monolith")
    csrf = (f"Cookie: csrftoken={CSRF_SECRET}", f"X-CSRFToken: {CSRF_SECRET}")
    schemathesis_run(f"{base}/api/schema", base, *csrf, cwd=tmp_path)


def test_legacy_api_answers_as_its_schema_says(catalogue, process_env, processes, tmp_path):
    from legacy_api.tokens import token_for_caller

    token = token_for_caller(caller="merchant")
    base = processes.gunicorn("config.wsgi_legacy", process_env, workers=1, threads=4, name="legacy")
    auth = f"Authorization: Bearer {token}"
    schema_url = f"{base}/legacy-api/schema?format=json"
    assert get_json_status(schema_url, ("Authorization", f"Bearer {token}")) == 200
    schemathesis_run(schema_url, base, auth, cwd=tmp_path)
