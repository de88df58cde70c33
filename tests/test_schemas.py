"""The published API contracts hold: schemathesis runs each OpenAPI schema (the hot path, the
basket API, the legacy API) against a real gunicorn serving it, in a bounded quick mode, and
finds no 5xx, no answer outside its schema and no bad input accepted.

Operations that need something to exist (an order's status URL, a basket line, a hold) are
given real identifiers, made over HTTP before the run, so their 200s are checked too."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

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
APPROVED_CARD = "4242424242424242"


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """One real HTTP request: (status, headers, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def schemathesis_run(
    schema_url: str, base: str, *, cwd: Path, headers=(), operations=None, operation_headers=None
) -> str:
    """Runs schemathesis's CLI against the server; `operations` fixes path parameters of the
    operations named by id ({operation_id: {"path.name": value}}), and `operation_headers` sends
    those operations other headers than the run's ({operation_id: {"Name": value}})."""
    config = cwd / "schemathesis.toml"
    lines = []
    for operation_id in {**(operations or {}), **(operation_headers or {})}:
        lines += ["[[operations]]", f"include-operation-id = {json.dumps(operation_id)}"]
        for key, table in (("parameters", operations), ("headers", operation_headers)):
            if operation_id in (table or {}):
                fixed = ", ".join(
                    f"{json.dumps(name)} = {json.dumps(value)}" for name, value in table[operation_id].items()
                )
                lines.append(f"{key} = {{ {fixed} }}")
    config.write_text("\n".join(lines) + "\n")
    argv = [str(BIN / "schemathesis"), "--no-color", "--config-file", str(config), "run", schema_url, "--url", base]
    argv += ["--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1"]
    argv += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--suppress-health-check", "all"]
    for header in headers:
        argv += ["--header", header]
    # Its cache and reports go to the test's own folder.
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    # A run that tested nothing would also exit 0.
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= 50, output[-4000:]
    return output


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
    base = processes.granian("config.wsgi_hotpath", env, workers=1, threads=4, name="hotpath")
    prefix = f"{base}/shop/rods/muskie-casting-rod"
    order = {
        "quantity": 1,
        "customer": {"name": "Ann Angler", "email": "ann@example.com"},
        "payment": {"card_number": APPROVED_CARD},
    }
    status, _, accepted = call("POST", f"{prefix}/orders", order, {"Idempotency-Key": uuid.uuid4().hex})
    assert status == 202
    number, token = accepted["status_url"].rsplit("/", 2)[-2:]
    assert call("GET", base + accepted["status_url"])[0] == 200

    schema_status, _, schema = call("GET", f"{prefix}/orders/schema")
    assert schema_status == 200
    assert (
        schema["paths"]["/shop/rods/muskie-casting-rod/orders"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["properties"]["quantity"]["maximum"]
        == 3
    )  # the sale's per-order limit, read live
    schemathesis_run(
        f"{prefix}/orders/schema",
        base,
        cwd=tmp_path,
        operations={"order_status": {"path.number": number, "path.token": token}},
    )


def test_hot_path_schema_is_not_found_for_a_product_off_the_hot_path(catalogue, process_env, processes):
    base = processes.granian("config.wsgi_hotpath", process_env, workers=1, threads=2, name="hotpath")
    status, _, body = call("GET", f"{base}/shop/rods/muskie-casting-rod/orders/schema")
    assert (status, body["error"]) == (404, "not_hot")
    assert body["detail"]


def test_basket_api_answers_as_its_schema_says(catalogue, process_env, processes, tmp_path):
    base = processes.gunicorn("config.wsgi_monolith", process_env, workers=1, threads=4, name="monolith")
    csrf = {"Cookie": f"csrftoken={CSRF_SECRET}", "X-CSRFToken": CSRF_SECRET}
    status, headers, _ = call("POST", f"{base}/api/basket/items", {"product": "spinning-reel", "quantity": 1}, csrf)
    assert status == 200
    session = re.search(r"sessionid=([^;]+)", headers["Set-Cookie"]).group(1)
    # The session's basket has a line, so PATCH and DELETE of its slug reach the basket.
    cookie = f"Cookie: csrftoken={CSRF_SECRET}; sessionid={session}"
    schemathesis_run(f"{base}/api/schema", base, cwd=tmp_path, headers=(cookie, f"X-CSRFToken: {CSRF_SECRET}"))


def test_legacy_api_answers_as_its_schema_says(catalogue, process_env, processes, tmp_path):
    from legacy_api.tokens import token_for_caller

    # The hot path's token reaches the orders and the holds; the merchant's, its figures and receipts.
    auth = {"Authorization": f"Bearer {token_for_caller(caller='hotpath')}"}
    merchant = {"Authorization": f"Bearer {token_for_caller(caller='merchant')}"}
    base = processes.gunicorn("config.wsgi_legacy", process_env, workers=1, threads=4, name="legacy")
    api = f"{base}/legacy-api"
    hold = {"reference": "schema-hold", "product": "spinning-reel", "quantity": 1}
    assert call("POST", f"{api}/holds", hold, auth)[0] == 201
    order = {
        "reference": "schema-order",
        "customer": {"name": "Ann Angler", "email": "ann@example.com"},
        "lines": [{"product": "spinning-reel", "quantity": 1}],
        "payment": {"card_number": APPROVED_CARD},
    }
    status, _, placed = call("POST", f"{api}/orders", order, auth)
    assert status == 201
    held = {"path.reference": "schema-hold"}
    schemathesis_run(
        f"{api}/schema?format=json",
        base,
        cwd=tmp_path,
        headers=(f"Authorization: {auth['Authorization']}",),
        operations={
            "order_get": {"path.order_id": placed["id"]},
            "stock_get": {"path.product": "spinning-reel"},
            "hold_get": held,
            "hold_resize": held,
            "hold_release": held,
        },
        operation_headers=dict.fromkeys(("stats_get", "stats_reset", "stock_receive"), merchant),
    )
