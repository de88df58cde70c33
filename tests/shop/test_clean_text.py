"""Free text on the storefront's forms (shop.forms.CleanTextField, ShopEmailField) is held to
the shop's one clean-text rule: no control characters, line separators, private-use or
unassigned code points, in the checkout's name and address fields as in its email, and in the
sign-up, account and lookup forms; each refusal names its field."""

from __future__ import annotations

import pytest
from django.test import Client

from shop.forms import CheckoutForm, OrderLookupForm, SignUpForm
from shop.models import PlacedOrder
from tests.shop.test_checkout import checkout_form, fill_basket

PASSWORD = "a-long-test-password"
IRISH = {"country": "Ireland", "region": "", "county": "Co. Cork", "postcode": "T12 X70A"}


@pytest.fixture(autouse=True)
def order_service_down(settings, closed_port_url):
    """A refused form calls nobody: any order placed here would be an error."""
    settings.LEGACY_API_URL = closed_port_url


@pytest.mark.parametrize(
    ("field", "value", "extra"),
    [
        ("city", "Du\x01luth", {}),
        ("address_line", "1 Main\x0b", {}),
        ("address_line", "\x1c1 Main", {}),
        ("city", "Du\u2028luth", {}),
        ("city", "Duluth\u2029", {}),
        ("postcode", "54843\x85", {}),
        ("county", "Co.\x7f Cork", IRISH),
        ("name", "Ada\x1b[31m", {}),
        ("address_line", "1 Main \ue000", {}),
        ("name", "Ada \u202eregnA", {}),
        ("city", "Du\u200bluth", {}),
    ],
)
def test_the_checkout_refuses_a_control_character_in_any_free_text_field_naming_it(client, rod, field, value, extra):
    fill_basket(client, rod, 1)

    response = client.post("/checkout/", checkout_form(**{**extra, field: value}))

    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field]
    label = form.fields[field].label.split(" (")[0]
    assert "with letters, digits and punctuation only" in form.errors[field][0]
    assert label.split()[0].lower() in form.errors[field][0].lower()
    assert f'<label for="id_{field}">' in response.content.decode()
    assert not PlacedOrder.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Zoë O’Brien-Łukasik"),
        ("name", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),  # a zero-width non-joiner, as Persian writes
        ("address_line", "  1 Lake Road, Apt. #4 \t"),
        ("city", "São Paulo"),
        ("city", "Zürich"),
    ],
)
def test_the_checkout_takes_the_letters_and_punctuation_people_write(field, value):
    form = CheckoutForm(checkout_form(**{field: value}))

    assert form.is_valid(), form.errors
    assert form.cleaned_data[field] == value.strip()


@pytest.mark.parametrize("email", ["ada@exa\u2028mple.com", "ada@exa\ue000mple.com", "ada@exa\u0378mple.com"])
def test_every_storefront_email_field_refuses_what_the_order_api_refuses(db, email):
    checkout = CheckoutForm(checkout_form(email=email))
    lookup = OrderLookupForm({"number": "FS-100001", "email": email, "card_last4": "4242"})
    sign_up = SignUpForm({"username": "ada", "email": email, "password1": PASSWORD, "password2": PASSWORD})

    for form in (checkout, lookup, sign_up):
        assert not form.is_valid()
        assert list(form.errors) == ["email"], form.errors


def test_the_account_page_refuses_such_an_email_naming_the_field(customer):
    client = Client()
    client.force_login(customer)

    response = client.post("/account/", {"email": "ada@exa\u2028mple.com", "password": PASSWORD})

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["email"]
    customer.refresh_from_db()
    assert customer.email == "angler@example.com"


def test_the_lookup_refuses_a_control_character_in_the_number_naming_it(client, db):
    response = client.post(
        "/orders/lookup/", {"number": "FS-1\x1b00001", "email": "a@example.com", "card_last4": "4242"}
    )

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["number"]
    assert "order number with letters, digits and punctuation only" in response.content.decode()
