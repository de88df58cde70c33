"""The monolith's buy-now endpoint: the order placed with the legacy API while the buyer waits,
on the hot path's contract (shop.order_input): one order per Idempotency-Key, 422 for a key
reused with another body, and no access to an order for a session that only replayed it."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client

import legacy_client
from events.models import Event
from legacy_api.models import Order
from shop.models import PlacedOrder, Product

pytestmark = pytest.mark.django_db(transaction=True)


def buy(client, product: Product, *, key: str | None = "key-1", **body_overrides):
    body = {
        "quantity": 1,
        "customer": {"name": "Ada Angler", "email": "ada@example.com"},
        "payment": {"card_number": "4242424242424242"},
    }
    body.update(body_overrides)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        f"/shop/{product.category.slug}/{product.slug}/orders",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def test_buy_now_places_the_order_at_once_and_a_replay_returns_the_same_order(client, legacy_api, rod):
    first = buy(client, rod, quantity=2)
    assert first.status_code == 201, first.content
    again = buy(client, rod, quantity=2)
    assert again.status_code == 201
    assert again.json()["number"] == first.json()["number"]
    rod.refresh_from_db()
    assert rod.stock == 8
    assert PlacedOrder.objects.count() == 1
    # The reference the hot path would give the same key: a retry across the two sides is one order.
    assert PlacedOrder.objects.get().reference == legacy_client.reference_for_key("key-1")
    assert again["Idempotent-Replayed"] == "true"
    assert client.get(first.json()["order_url"]).status_code == 200


def test_a_replay_from_another_session_gets_the_answer_but_no_access_to_the_order(client, legacy_api, rod):
    first = buy(client, rod)
    other = Client()
    again = buy(other, rod)
    assert (again.status_code, again.json()) == (201, first.json())
    assert other.get(first.json()["order_url"]).status_code == 404
    assert client.get(first.json()["order_url"]).status_code == 200


def test_the_same_key_with_another_body_is_422_and_shows_nothing_of_the_first_order(client, legacy_api, rod):
    first = buy(client, rod)
    other = Client()
    reused = buy(other, rod, quantity=2, customer={"name": "Bob Biter", "email": "bob@example.com"})
    assert reused.status_code == 422
    assert reused.json() == {"error": "idempotency_key_reused", "detail": reused.json()["detail"]}
    assert first.json()["number"] not in reused.content.decode()
    assert other.get(first.json()["order_url"]).status_code == 404
    rod.refresh_from_db()
    assert (rod.stock, PlacedOrder.objects.count()) == (9, 1)


def test_the_buyer_is_emailed_once_when_the_order_is_placed_not_on_a_replay(client, legacy_api, rod, mailoutbox):
    first = buy(client, rod)
    buy(client, rod)
    buy(Client(), rod)
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.com"]
    number = first.json()["number"]
    assert number in message.subject
    assert f"/orders/{number}/?access=" in message.body


def test_a_quantity_over_the_per_order_limit_is_400_naming_quantity(client, legacy_api, make_product):
    plenty = make_product("bulk-swivels", stock=500)
    answer = buy(client, plenty, quantity=100)
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"quantity"}
    assert PlacedOrder.objects.count() == 0 and mail.outbox == []


def test_buy_now_declined_card_is_402_and_takes_no_stock(client, legacy_api, rod):
    answer = buy(client, rod, payment={"card_number": "4000000000000002"})
    assert answer.status_code == 402
    assert answer.json()["error"] == "card_declined"
    assert answer.json()["fields"] == {"payment.card_number": ["This card was declined."]}  # the field to change
    rod.refresh_from_db()
    assert rod.stock == 10


def test_a_declined_key_is_bound_to_its_body_as_on_the_hot_path(client, legacy_api, rod):
    """A key's first answer was a declined card: the same body gets it again, another body 422
    (the hot path binds a key to its declined order likewise), and nothing is placed."""
    declined = {"payment": {"card_number": "4000000000000002"}}

    first = buy(client, rod, key="dec-1", **declined)
    other_card = buy(client, rod, key="dec-1")
    again = buy(Client(), rod, key="dec-1", **declined)

    assert first.status_code == 402
    assert (other_card.status_code, other_card.json()["error"]) == (422, "idempotency_key_reused")
    assert (again.status_code, again.json()) == (402, first.json())
    # Told apart from a fresh decline as a replayed 201 is.
    assert (first.get("Idempotent-Replayed"), again.get("Idempotent-Replayed")) == (None, "true")
    assert not Order.objects.filter(status=Order.Status.PLACED).exists() and PlacedOrder.objects.count() == 0
    assert buy(client, rod, key="dec-2").status_code == 201  # a fresh key orders


def test_another_body_that_reached_the_legacy_api_first_under_the_key_is_422_not_a_basket_error(
    client, legacy_api, rod, monkeypatch
):
    """Two bodies sent with one key at the same moment: the one the legacy API placed first wins,
    and the other is told its key was used, as the hot path tells it, not that a basket changed."""
    place = legacy_client.order_place

    def another_body_first(**kwargs):
        assert place(**{**kwargs, "name": "Bob Biter"}).outcome == legacy_client.Outcome.PLACED
        return place(**kwargs)

    monkeypatch.setattr(legacy_client, "order_place", another_body_first)
    answer = buy(client, rod, key="race-1")

    assert (answer.status_code, answer.json()["error"]) == (422, "idempotency_key_reused")
    assert Order.objects.filter(status=Order.Status.PLACED).count() == 1


def test_a_busy_legacy_api_is_503_without_a_word_about_a_basket(client, legacy_api, rod, monkeypatch):
    monkeypatch.setattr(
        legacy_client, "order_place", lambda **kwargs: legacy_client.OrderAnswer(legacy_client.Outcome.IN_PROGRESS)
    )
    answer = buy(client, rod, key="busy-1")
    assert answer.status_code == 503 and answer["Retry-After"]
    assert "basket" not in answer.json()["detail"] and "Idempotency-Key" in answer.json()["detail"]


def test_buy_now_more_than_in_stock_is_409(client, legacy_api, rod):
    answer = buy(client, rod, quantity=11)
    assert answer.status_code == 409
    assert PlacedOrder.objects.count() == 0


def test_buy_now_with_the_legacy_api_down_is_503_with_retry_after(client, settings, rod):
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"
    answer = buy(client, rod)
    assert answer.status_code == 503
    assert answer["Retry-After"]
    assert PlacedOrder.objects.count() == 0


@pytest.mark.parametrize(
    ("key", "overrides", "field"),
    [
        (None, {}, "Idempotency-Key"),
        ("k" * 256, {}, "Idempotency-Key"),
        ("key", {"quantity": 0}, "quantity"),
        ("key", {"quantity": "2"}, "quantity"),
        ("key", {"customer": {"email": "ada@example.com"}}, "customer.name"),
        ("key", {"customer": {"name": "Ada", "email": "nope"}}, "customer.email"),
        ("key", {"customer": {"name": "Ada", "email": '"\x0b"@example.com'}}, "customer.email"),
        ("key", {"customer": {"name": "Ada", "email": "ada@exa\u00admple.com"}}, "customer.email"),
        ("key", {"payment": {}}, "payment.card_number"),
        ("key", {"payment": {"card_number": "1234"}}, "payment.card_number"),
    ],
)
def test_buy_now_bad_input_is_400_naming_the_field_and_writes_nothing(client, rod, key, overrides, field):
    answer = buy(client, rod, key=key, **overrides)
    assert answer.status_code == 400
    # The one error shape of every API: {"error", "detail", "fields": {field: [messages]}}.
    body = answer.json()
    assert body["error"] == "invalid" and body["detail"]
    assert isinstance(body["fields"][field], list) and all(isinstance(m, str) and m for m in body["fields"][field])
    rod.refresh_from_db()
    assert rod.stock == 10
    assert PlacedOrder.objects.count() == 0


def test_buy_now_names_every_bad_field_at_once_and_writes_nothing(client, rod):
    answer = buy(
        client,
        rod,
        key=None,
        quantity=0,
        customer={"name": "", "email": "nope"},
        payment={"card_number": "1234"},
    )
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {
        "Idempotency-Key",
        "quantity",
        "customer.name",
        "customer.email",
        "payment.card_number",
    }
    rod.refresh_from_db()
    assert rod.stock == 10 and PlacedOrder.objects.count() == 0


def test_buy_now_of_an_unknown_product_names_it_with_the_bodys_other_faults(client, rod):
    answer = client.post(
        "/shop/rods/no-such-rod/orders",
        data=json.dumps({"quantity": "one", "customer": {"name": "Ada", "email": "ada@example.com"}}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )
    assert answer.status_code == 400
    assert set(answer.json()["fields"]) == {"product", "quantity", "payment", "payment.card_number"}


def test_buy_now_sold_out_says_so_without_speaking_of_a_basket(client, legacy_api, rod):
    Product.objects.filter(pk=rod.pk).update(stock=0)
    answer = buy(client, rod, quantity=1)
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert detail == "Sorry, Tourney Casting Rod is sold out. No order was placed."
    assert "basket" not in detail.lower()


def test_buy_now_of_more_than_is_left_says_how_many_are(client, legacy_api, rod):
    answer = buy(client, rod, quantity=11)
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert detail == "Sorry, only 10 Tourney Casting Rod left: order 10 or fewer. No order was placed."
    assert "basket" not in detail.lower()


@pytest.mark.parametrize("email", ["al@exa\ud800mple.com", "al@example.com\ud800", "al@exa\udfffmple.com"])
def test_buy_now_refuses_an_email_with_a_lone_surrogate_before_the_legacy_api_sees_it(client, legacy_api, rod, email):
    """The legacy API refuses it too, but only after the shop has logged a failed checkout."""
    answer = buy(client, rod, customer={"name": "Ada Angler", "email": email})
    assert answer.status_code == 400
    assert list(answer.json()["fields"]) == ["customer.email"]
    rod.refresh_from_db()
    assert rod.stock == 10
    assert not PlacedOrder.objects.exists() and not Event.objects.exists() and not Order.objects.exists()
