"""Callers' tokens: every endpoint but ping asks for one, the caller comes from it (never from a
header), the figures are the merchant's, orders are placed by every caller but the merchant,
holds are the hot path's, tokens are kept hashed, and the command prints one that works."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from legacy_api import capacity
from legacy_api.models import ApiToken, Order
from legacy_api.tokens import token_caller, token_create, token_revoke, tokens_register_configured

pytestmark = pytest.mark.django_db

# Every endpoint but ping, with a method it takes.
ENDPOINTS = [
    ("post", "/legacy-api/orders"),
    ("get", "/legacy-api/orders/1"),
    ("post", "/legacy-api/holds"),
    ("get", "/legacy-api/holds/sale-1"),
    ("patch", "/legacy-api/holds/sale-1"),
    ("delete", "/legacy-api/holds/sale-1"),
    ("get", "/legacy-api/stock/muskie-casting-rod"),
    ("get", "/legacy-api/stats"),
    ("post", "/legacy-api/stats/reset"),
    ("get", "/legacy-api/schema"),
]


def call(client: Client, method: str, path: str, **headers):
    if method == "get":
        return client.get(path, headers=headers)
    return getattr(client, method)(path, data="{}", content_type="application/json", headers=headers)


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401, (response.status_code, response.content)
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "unauthenticated"
    assert body["detail"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_call_without_a_token_is_401(anonymous_client, muskie_rod, method, path):
    assert_unauthenticated(call(anonymous_client, method, path))


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_a_call_with_a_wrong_token_is_401(anonymous_client, muskie_rod, method, path, authorization):
    assert_unauthenticated(call(anonymous_client, method, path, Authorization=authorization))


def test_ping_needs_no_token(anonymous_client):
    assert anonymous_client.get("/legacy-api/ping").content == b"PONG"


def test_an_anonymous_order_writes_nothing(anonymous_client, order_body, muskie_rod):
    anonymous_client.post("/legacy-api/orders", data=json.dumps(order_body()), content_type="application/json")

    assert not Order.objects.exists()
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 10


def test_a_revoked_token_is_401(anonymous_client, muskie_rod):
    row, token = token_create(caller="storefront")
    assert anonymous_client.get("/legacy-api/stock/muskie-casting-rod", headers={"Authorization": f"Bearer {token}"})
    token_revoke(pk=row.pk)

    assert_unauthenticated(
        anonymous_client.get("/legacy-api/stock/muskie-casting-rod", headers={"Authorization": f"Bearer {token}"})
    )


@pytest.mark.parametrize(("method", "path"), [("get", "/legacy-api/stats"), ("post", "/legacy-api/stats/reset")])
@pytest.mark.parametrize("caller", ["storefront", "hotpath"])
def test_only_the_merchant_reads_or_resets_the_figures(muskie_rod, method, path, caller, settings):
    client = Client(headers={"Authorization": f"Bearer {settings.LEGACY_API_TOKENS[caller]}"})

    response = call(client, method, path)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert response.json()["detail"]


def test_the_merchants_order_is_403_naming_who_may_and_writes_nothing(merchant_client, order_body, muskie_rod):
    capacity.stats_reset()

    response = merchant_client.post(
        "/legacy-api/orders", data=json.dumps(order_body()), content_type="application/json"
    )

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "storefront" in body["detail"] and "hotpath" in body["detail"]
    assert not Order.objects.exists()
    figures = merchant_client.get("/legacy-api/stats").json()
    assert (figures["authorisations"], figures["declines"], figures["peak_inflight"]) == (0, 0, 0)
    assert figures["callers"]["merchant"]["peak_inflight"] == 0
    muskie_rod.refresh_from_db()
    assert (muskie_rod.stock, muskie_rod.held) == (10, 0)


@pytest.mark.parametrize("caller", ["storefront", "hotpath"])
def test_the_callers_that_sell_place_orders(caller, settings, order_body, muskie_rod):
    client = Client(headers={"Authorization": f"Bearer {settings.LEGACY_API_TOKENS[caller]}"})

    response = client.post("/legacy-api/orders", data=json.dumps(order_body()), content_type="application/json")

    assert response.status_code == 201
    assert Order.objects.get().caller == caller


def test_another_configured_caller_neither_places_orders_nor_takes_holds(settings, order_body, muskie_rod):
    settings.LEGACY_API_CALLERS = (*settings.LEGACY_API_CALLERS, "partner")
    _, token = token_create(caller="partner")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    hold = {"reference": "sale-1", "product": "muskie-casting-rod", "quantity": 2}

    placed = client.post("/legacy-api/orders", data=json.dumps(order_body()), content_type="application/json")
    refused = client.post("/legacy-api/holds", data=json.dumps(hold), content_type="application/json")

    # Refused until the code names it among the callers that sell (tokens.ORDER_CALLERS).
    assert (placed.status_code, placed.json()["error"]) == (403, "forbidden")
    assert placed.json()["detail"] == "Only these callers' tokens may place orders: storefront, hotpath."
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert not Order.objects.exists()
    muskie_rod.refresh_from_db()
    assert (muskie_rod.stock, muskie_rod.held) == (10, 0)


def test_the_storefronts_token_cannot_reset_the_figures(client, merchant_client, post_order, order_body, slots_held):
    post_order(order_body())  # shed: every slot is held
    assert client.post("/legacy-api/stats/reset").status_code == 403

    assert merchant_client.get("/legacy-api/stats").json()["shed"] == 1


def test_the_caller_in_the_figures_is_the_tokens_not_the_headers(hotpath_client, order_body, muskie_rod):
    capacity.stats_reset()
    gate = capacity.backend()
    # Held slots shed the order, so the figures keep the peak it made while in flight.
    handles = [gate.slot_acquire(4) for _ in range(4)]
    try:
        response = hotpath_client.post(
            "/legacy-api/orders",
            data=json.dumps(order_body()),
            content_type="application/json",
            headers={"X-Legacy-Caller": "storefront"},
        )
    finally:
        for handle in handles:
            gate.slot_release(handle)

    assert response.status_code == 503
    callers = capacity.stats()["callers"]
    assert callers["hotpath"]["peak_inflight"] == 1
    assert callers["storefront"]["peak_inflight"] == 0


def test_tokens_are_kept_as_their_sha256_only(db):
    row, token = token_create(caller="merchant", label="ops laptop")

    stored = ApiToken.objects.values().get(pk=row.pk)
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for value in stored.values())
    assert token_caller(token=token) == "merchant"


def test_derived_tokens_are_registered_outside_production_and_refused_in_it(settings):
    derived = settings.LEGACY_API_TOKENS_DERIVED["hotpath"]
    assert token_caller(token=derived) == "hotpath"  # registered after migrate

    settings.DJANGO_ENV = "production"
    ApiToken.objects.all().delete()
    tokens_register_configured()

    assert token_caller(token=derived) is None
    assert not ApiToken.objects.filter(token_hash=hashlib.sha256(derived.encode()).hexdigest()).exists()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_token_with_a_letter_past_ascii_is_401_in_production_too(
    anonymous_client, muskie_rod, settings, method, path
):
    # WSGI gives a header's bytes as latin-1 text, and hmac.compare_digest refuses text past
    # ASCII: checking it against the derived tokens was a 500 before any token was looked up.
    settings.DJANGO_ENV = "production"
    assert_unauthenticated(call(anonymous_client, method, path, Authorization="Bearer caf\xe9"))


def test_the_command_prints_a_token_that_works_over_http(capsys, anonymous_client, muskie_rod, settings):
    settings.DJANGO_ENV = "production"  # no derived token: the command makes a new one
    ApiToken.objects.all().delete()

    call_command("legacy_api_token", "merchant")
    token = capsys.readouterr().out.strip()

    response = anonymous_client.get("/legacy-api/stats", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert ApiToken.objects.get().caller == "merchant"


def test_the_command_prints_the_configured_token_in_development(capsys, settings):
    call_command("legacy_api_token", "storefront")

    printed = capsys.readouterr()
    assert printed.out.strip() == settings.LEGACY_API_TOKENS["storefront"] and printed.err == ""


def test_the_command_says_when_its_token_is_not_the_one_the_processes_send(capsys, settings):
    """The development token revoked in the admin: the command prints a new one, which works, but
    the shop's processes still send the revoked one. Told nothing, an operator took the hot path
    (or the checkout) for mended."""
    configured = ApiToken.objects.get(
        token_hash=hashlib.sha256(settings.LEGACY_API_TOKENS["hotpath"].encode()).hexdigest()
    )
    token_revoke(pk=configured.pk)

    call_command("legacy_api_token", "hotpath")

    printed = capsys.readouterr()
    assert printed.out.strip() != settings.LEGACY_API_TOKENS["hotpath"]
    assert token_caller(token=printed.out.strip()) == "hotpath"
    assert printed.err.strip() == (
        "A new token: the one hotpath's processes are configured with (LEGACY_API_TOKEN_HOTPATH) is unset, "
        "refused or revoked. Set LEGACY_API_TOKEN_HOTPATH to it where they run, and where the legacy API runs."
    )


@pytest.mark.parametrize("caller", ["nobody", "Store Front", ""])
def test_the_command_refuses_a_bad_caller_name(caller):
    with pytest.raises(CommandError, match="caller"):
        call_command("legacy_api_token", caller)
    assert not ApiToken.objects.exclude(label="configured").exists()
