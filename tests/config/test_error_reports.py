"""A failed checkout's error email to ADMINS names none of the buyer's card, email, name or
address: not in its form data, not in the frames' local variables of its HTML report."""

from __future__ import annotations

import sys

import pytest
from django.core import mail
from django.db import DatabaseError, IntegrityError
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter

from config.redaction import holds_buyer_data
from shop import checkouts
from shop.models import Category, Product
from tests.shop.conftest import post_json

pytestmark = pytest.mark.django_db

CARD = "5555 5555 5555 4444"
CARD_DIGITS = "5555555555554444"
EMAIL = "carol.private@example.org"
NAME = "Carol Privatebuyer"
ROW = f"(8, L00000019, {EMAIL}, {NAME}, 1 Lake Road, Hayward)"


@pytest.fixture
def reel(db) -> Product:
    reels = Category.objects.create(name="Reels", slug="reels")
    return Product.objects.create(
        category=reels, title="Spinning Reel", slug="spinning-reel", price_cents=2999, stock=5
    )


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.DEBUG = False
    mail.outbox.clear()


def checkout_form() -> dict:
    return {
        "name": NAME,
        "email": EMAIL,
        "address_line": "1 Lake Road",
        "city": "Hayward",
        "region": "WI",
        "postcode": "54843",
        "country": "United States",
        "card_number": CARD,
    }


def error_mails() -> list[str]:
    sent = [message for message in mail.outbox if message.to == ["ops@example.com"]]
    assert sent, "no error email was sent to ADMINS"
    texts = []
    for message in sent:
        texts.append(message.subject + message.body)
        texts += [str(content) for content, _ in getattr(message, "alternatives", [])]
    return texts


def assert_no_buyer(text: str) -> None:
    for secret in (CARD, CARD_DIGITS, "5555555555554444"[-12:], EMAIL, NAME):
        assert secret not in text


def test_a_checkout_that_fails_mails_admins_without_the_buyers_card_or_person(admins, settings, reel, monkeypatch):
    client = Client(raise_request_exception=False)
    assert post_json(client, "/api/basket/items", {"product": reel.slug, "quantity": 1}).status_code == 200

    def failing(*, card_number, delivery, **kwargs):
        raise RuntimeError("the order service failed")

    monkeypatch.setattr(checkouts, "checkout_place", failing)
    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 500
    texts = error_mails()
    assert any("card_number" in text for text in texts)  # the field is named, its value hidden
    for text in texts:
        assert_no_buyer(text)


def test_a_database_error_quoting_the_buyers_row_is_mailed_without_it(admins, reel, monkeypatch):
    client = Client(raise_request_exception=False)
    assert post_json(client, "/api/basket/items", {"product": reel.slug, "quantity": 1}).status_code == 200

    def refused(**kwargs):
        try:
            raise DatabaseError(f"Failing row contains {ROW}.")
        except DatabaseError as exc:
            raise IntegrityError(
                'new row for relation "shop_placedorder" violates check constraint "placed_total"\n'
                f"DETAIL:  Failing row contains {ROW}."
            ) from exc

    monkeypatch.setattr(checkouts, "checkout_place", refused)
    assert client.post("/checkout/", checkout_form()).status_code == 500

    texts = error_mails()
    assert any("violates check constraint" in text for text in texts)
    for text in texts:
        assert_no_buyer(text)
        assert "Lake Road" not in text


def test_a_checkout_answered_503_mails_admins_without_the_buyers_card_or_person(admins, settings, reel):
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"
    client = Client()
    assert post_json(client, "/api/basket/items", {"product": reel.slug, "quantity": 1}).status_code == 200

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 503
    for text in error_mails():
        assert_no_buyer(text)


def test_the_html_report_hides_locals_that_hold_a_card_or_an_address():
    request = RequestFactory().post("/checkout/", {"note": f"pay with {CARD}", "quantity": "1"})

    def place(card, buyer, capacity, template_name):
        raise RuntimeError("failed")

    try:
        place(CARD_DIGITS, {"to": EMAIL}, "capacity-17", "shop/checkout.html")
    except RuntimeError:
        html = ExceptionReporter(request, *sys.exc_info(), is_email=True).get_traceback_html()

    assert CARD_DIGITS not in html and EMAIL not in html
    assert "quantity" in html
    # Words that only hold a buyer's field's letters are the report's to show.
    assert "capacity-17" in html and "shop/checkout.html" in html


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("4242 4242 4242 4242", True),
        ("order 4242-4242-4242-4242 paid", True),
        ("reach me at ann@example.org", True),
        ("4242 4242 4242 4241", False),  # no card: its check digit is wrong
        ("T000123", False),
        ("1234", False),
    ],
)
def test_card_numbers_and_email_addresses_are_recognised(text, held):
    assert holds_buyer_data(text) is held
