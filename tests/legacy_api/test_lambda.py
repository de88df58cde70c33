"""The legacy API as an AWS Lambda behind API Gateway (REST v1 and HTTP API v2 events): the
same answers as the WSGI server gives."""

from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from legacy_api.models import Order
from tests.legacy_api.conftest import ORDERS_URL

pytestmark = pytest.mark.django_db

EVENTS = Path(__file__).parent / "events"


@pytest.fixture
def lambda_handler(monkeypatch, settings):
    """The deployment's handler. Importing it sets SHOP_DEPLOYMENT and DJANGO_ENV for a Lambda
    process; monkeypatch puts the test process's environment back afterwards."""
    monkeypatch.setenv("SHOP_DEPLOYMENT", os.environ.get("SHOP_DEPLOYMENT", "all"))
    monkeypatch.setenv("DJANGO_ENV", os.environ.get("DJANGO_ENV", "test"))
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, ".execute-api.eu-west-1.amazonaws.com"]
    # Importing it readies this process as a Lambda's (config.wsgi), tracing included: set up
    # here, tracing would sample every later test's requests in this process at 1 %, and a
    # sampled request is answered the whole way (orders.middleware), not as its test expects.
    settings.TRACING_ENABLED = False
    from config.lambda_legacy import lambda_handler

    def invoke(evt: dict) -> dict:
        # As Django's test client does around each request: the real handler closes the
        # database connection when a request ends, and the test's transaction with it.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            return lambda_handler(evt, None)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return invoke


def event(name: str, caller: str = "storefront") -> dict:
    """A recorded API Gateway event, sent with the caller's bearer token as the service demands."""
    evt = json.loads((EVENTS / name).read_text())
    token = f"Bearer {settings.LEGACY_API_TOKENS[caller]}"
    evt.setdefault("headers", {})["Authorization"] = token
    if "multiValueHeaders" in evt:
        evt["multiValueHeaders"]["Authorization"] = [token]
    return evt


def event_body(evt: dict) -> bytes:
    return base64.b64decode(evt["body"]) if evt.get("isBase64Encoded") else evt["body"].encode()


def with_body(evt: dict, body: dict) -> dict:
    evt = copy.deepcopy(evt)
    raw = json.dumps(body).encode()
    if evt.get("isBase64Encoded"):
        evt["body"] = base64.b64encode(raw).decode()
    else:
        evt["body"] = raw.decode()
    for headers in (evt.get("headers") or {}, evt.get("multiValueHeaders") or {}):
        for key in list(headers):
            if key.lower() == "content-length":
                headers[key] = str(len(raw)) if isinstance(headers[key], str) else [str(len(raw))]
    return evt


def header(response: dict, name: str) -> str:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return values[-1]
    raise KeyError(name)


def answer_json(response: dict) -> dict:
    body = base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"]
    return json.loads(body)


@pytest.mark.parametrize("name", ["v1_ping.json", "v2_ping.json"])
def test_lambda_ping_answers_like_the_wsgi_server(lambda_handler, client, name):
    response = lambda_handler(event(name))
    wsgi = client.get("/legacy-api/ping")

    assert response["statusCode"] == wsgi.status_code == 200
    assert response["body"] == wsgi.content.decode() == "PONG"
    assert header(response, "Content-Type") == wsgi["Content-Type"]


@pytest.mark.parametrize("name", ["v1_post_order.json", "v2_post_order.json"])
def test_lambda_places_an_order_the_wsgi_server_then_recognises(lambda_handler, client, muskie_rod, name):
    evt = event(name)

    response = lambda_handler(evt)
    wsgi = client.post(ORDERS_URL, data=event_body(evt), content_type="application/json")

    assert response["statusCode"] == 201
    assert header(response, "Content-Type") == "application/json"
    placed = answer_json(response)
    assert placed["reference"] == json.loads(event_body(evt))["reference"]
    assert (wsgi.status_code, wsgi.json()) == (200, placed)
    assert Order.objects.get().pk == placed["id"]
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 9


@pytest.mark.parametrize("name", ["v1_post_order.json", "v2_post_order.json"])
def test_lambda_replays_an_order_placed_through_the_wsgi_server(lambda_handler, client, muskie_rod, name):
    evt = event(name)
    wsgi = client.post(ORDERS_URL, data=event_body(evt), content_type="application/json")

    response = lambda_handler(evt)

    assert wsgi.status_code == 201
    assert response["statusCode"] == 200
    assert answer_json(response) == wsgi.json()
    assert Order.objects.count() == 1


@pytest.mark.parametrize("name", ["v1_post_order.json", "v2_post_order.json"])
def test_lambda_refuses_bad_input_as_the_wsgi_server_does(lambda_handler, client, order_body, muskie_rod, name):
    bad = order_body(lines=[{"product": "muskie-casting-rod", "quantity": 0}], payment={"card_number": "4000"})

    response = lambda_handler(with_body(event(name), bad))
    wsgi = client.post(ORDERS_URL, data=json.dumps(bad), content_type="application/json")

    assert response["statusCode"] == wsgi.status_code == 400
    assert answer_json(response) == wsgi.json()
    assert set(wsgi.json()["fields"]) == {"lines.0.quantity", "payment.card_number"}
    assert not Order.objects.exists()


@pytest.mark.parametrize("name", ["v1_post_order.json", "v2_post_order.json"])
def test_lambda_refuses_a_caller_without_a_token(lambda_handler, muskie_rod, name):
    evt = event(name)
    for headers in (evt.get("headers") or {}, evt.get("multiValueHeaders") or {}):
        headers.pop("Authorization", None)

    response = lambda_handler(evt)

    assert response["statusCode"] == 401
    assert header(response, "WWW-Authenticate") == "Bearer"
    assert answer_json(response)["error"] == "unauthenticated"
    assert not Order.objects.exists()
