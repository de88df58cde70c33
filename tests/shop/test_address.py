"""Delivery addresses follow the country's convention: its fields (a state from the country's
list, an optional county), its postcodes, its labels, and the order of its lines on the order
page. The server names the field at fault, so the form works without its script."""

from __future__ import annotations

import re

import pytest

from shop.addresses import CONVENTIONS, address_lines
from shop.forms import CheckoutForm
from shop.models import PlacedOrder
from tests.shop.conftest import basket_lines, post_json

CARD = "4242 4242 4242 4242"


def form(**address) -> CheckoutForm:
    return CheckoutForm({"name": "Ada Angler", "email": "ada@example.com", "card_number": CARD, **address})


US = {"country": "United States", "address_line": "12 Lake Avenue", "city": "Duluth", "region": "MN"}


@pytest.mark.parametrize(
    ("address", "region", "postcode"),
    [
        ({**US, "postcode": "55802"}, "MN", "55802"),
        ({**US, "postcode": "55802-1234"}, "MN", "55802-1234"),
        (
            {"country": "Canada", "address_line": "1 rue Sherbrooke", "city": "Montréal", "region": "QC"}
            | {"postcode": "h2x1y4"},
            "QC",
            "H2X 1Y4",
        ),
        (
            {"country": "United Kingdom", "address_line": "1 High Street", "city": "Ambleside"}
            | {"county": "Cumbria", "postcode": "la22 0bz"},
            "Cumbria",
            "LA22 0BZ",
        ),
        (
            {"country": "United Kingdom", "address_line": "10 Downing St", "city": "London", "postcode": "SW1A2AA"},
            "",
            "SW1A 2AA",
        ),
        ({"country": "Ireland", "address_line": "1 Quay St", "city": "Galway", "county": "Galway"}, "Galway", ""),
        ({"country": "Ireland", "address_line": "1 Quay St", "city": "Dublin", "postcode": "d02 x285"}, "", "D02 X285"),
        (
            {"country": "Australia", "address_line": "1 George St", "city": "Sydney", "region": "NSW"}
            | {"postcode": "2000"},
            "NSW",
            "2000",
        ),
        # A state posted for a country without states (a form sent without its script) is dropped.
        (
            {
                "country": "Germany",
                "address_line": "Seestraße 1",
                "city": "Berlin",
                "region": "MN",
                "postcode": "10115",
            },
            "",
            "10115",
        ),
        (
            {"country": "Netherlands", "address_line": "Damrak 1", "city": "Amsterdam", "postcode": "1012lg"},
            "",
            "1012 LG",
        ),
        ({"country": "Sweden", "address_line": "Sveavägen 1", "city": "Stockholm", "postcode": "11157"}, "", "111 57"),
        ({"country": "Norway", "address_line": "Karl Johans gate 1", "city": "Oslo", "postcode": "0154"}, "", "0154"),
        (
            {"country": "New Zealand", "address_line": "1 Lambton Quay", "city": "Wellington", "postcode": "6011"},
            "",
            "6011",
        ),
    ],
)
def test_an_address_in_the_countrys_form_is_accepted_and_normalised(address, region, postcode):
    checkout = form(**address)
    assert checkout.is_valid(), checkout.errors
    delivery = checkout.delivery()
    assert (delivery.region, delivery.postcode) == (region, postcode)


@pytest.mark.parametrize(
    ("address", "field", "message"),
    [
        ({**US, "region": "", "postcode": "55802"}, "region", "Choose your state."),
        ({**US, "region": "QC", "postcode": "55802"}, "region", "Choose a state of United States."),
        ({**US, "region": "XX", "postcode": "55802"}, "region", "Select a valid choice."),
        ({**US, "postcode": "5580"}, "postcode", "Enter a valid ZIP code, like 55802 or 55802-1234."),
        ({**US, "postcode": "ABCDE"}, "postcode", "Enter a valid ZIP code"),
        ({**US, "postcode": ""}, "postcode", "Enter your ZIP code."),
        (
            {"country": "Canada", "address_line": "1 rue", "city": "Montréal", "region": "NSW", "postcode": "H2X 1Y4"},
            "region",
            "Choose a province or territory of Canada.",
        ),
        (
            {"country": "Canada", "address_line": "1 rue", "city": "Montréal", "region": "QC", "postcode": "D2X 1Y4"},
            "postcode",
            "Enter a valid postal code, like H2X 1Y4.",
        ),
        (
            {"country": "United Kingdom", "address_line": "1 High St", "city": "Leeds", "postcode": "12345"},
            "postcode",
            "Enter a valid postcode, like SW1A 1AA.",
        ),
        (
            {"country": "Ireland", "address_line": "1 Quay St", "city": "Cork", "postcode": "T12"},
            "postcode",
            "Enter a valid Eircode, like D02 X285.",
        ),
        (
            {"country": "Australia", "address_line": "1 George St", "city": "Sydney", "postcode": "2000"},
            "region",
            "Choose your state or territory.",
        ),
        (
            {
                "country": "Australia",
                "address_line": "1 George St",
                "city": "Sydney",
                "region": "NSW",
                "postcode": "20000",
            },
            "postcode",
            "Enter a valid postcode, like 2000.",
        ),
        (
            {"country": "Germany", "address_line": "Seestraße 1", "city": "Berlin", "postcode": "1011"},
            "postcode",
            "Enter a valid postcode, like 10115.",
        ),
        (
            {"country": "Netherlands", "address_line": "Damrak 1", "city": "Amsterdam", "postcode": "1012 SS"},
            "postcode",
            "Enter a valid postcode",
        ),
    ],
)
def test_a_wrong_address_names_the_field_and_says_what_the_country_expects(address, field, message):
    checkout = form(**address)
    assert not checkout.is_valid()
    assert any(message in error for error in checkout.errors[field]), checkout.errors


def test_every_wrong_field_of_an_address_is_named_at_once():
    checkout = form(country="United States", address_line="", city="", region="", postcode="1")
    assert not checkout.is_valid()
    assert {"address_line", "city", "region", "postcode"} <= set(checkout.errors)


@pytest.mark.parametrize(
    ("country", "labels"),
    [
        ("United States", {"city": "City", "region": "State", "postcode": "ZIP code"}),
        ("Canada", {"region": "Province or territory", "postcode": "Postal code"}),
        ("Australia", {"city": "Suburb or town", "region": "State or territory", "postcode": "Postcode"}),
        ("United Kingdom", {"city": "Town or city", "county": "County (optional)", "postcode": "Postcode"}),
        ("Ireland", {"county": "County (optional)", "postcode": "Eircode (optional)"}),
        ("Germany", {"postcode": "Postcode"}),
    ],
)
def test_a_form_sent_back_speaks_the_countrys_labels(country, labels):
    checkout = form(country=country, address_line="", city="", postcode="")
    checkout.is_valid()
    for name, label in labels.items():
        assert checkout.fields[name].label == label


def test_a_form_sent_back_shows_only_the_fields_the_country_has():
    assert form(country="Germany").address_fields_shown == {"region": False, "county": False}
    assert form(country="United States").address_fields_shown == {"region": True, "county": False}
    assert form(country="Ireland").address_fields_shown == {"region": False, "county": True}
    # Before a country is chosen (and for the page without its script) every field is there.
    assert CheckoutForm().address_fields_shown == {"region": True, "county": True}


def test_the_states_of_a_form_sent_back_are_its_countrys_only():
    checkout = form(country="Canada")
    codes = [code for code, _ in checkout.fields["region"].widget.choices if code]
    assert codes == [code for code, _ in CONVENTIONS["Canada"].regions]


@pytest.mark.parametrize(
    ("country", "region", "postcode", "lines"),
    [
        ("United States", "MN", "55802", ["Duluth, MN 55802"]),
        ("Canada", "QC", "H2X 1Y4", ["Duluth QC H2X 1Y4"]),
        ("Australia", "NSW", "2000", ["Duluth NSW 2000"]),
        ("United Kingdom", "Cumbria", "LA22 0BZ", ["Duluth", "Cumbria", "LA22 0BZ"]),
        ("United Kingdom", "", "LA22 0BZ", ["Duluth", "LA22 0BZ"]),
        ("Ireland", "Galway", "", ["Duluth", "Galway"]),
        ("Germany", "", "55802", ["55802 Duluth"]),
        ("France", "", "55802", ["55802 Duluth"]),
        ("Netherlands", "", "1012 LG", ["1012 LG Duluth"]),
        ("Finland", "", "00100", ["00100 Duluth"]),
        ("New Zealand", "", "6011", ["Duluth 6011"]),
        ("", "", "55802", ["55802 Duluth"]),  # recorded before addresses had a country's order
    ],
)
def test_an_address_is_written_in_the_countrys_order(country, region, postcode, lines):
    written = address_lines(address_line="1 Lake Ave", city="Duluth", region=region, postcode=postcode, country=country)
    assert written == ["1 Lake Ave", *lines, *([country] if country else [])]


# --- Through the checkout page, against the real legacy API -------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_us_checkout_with_a_state_prints_the_address_in_us_order(client, legacy_api, rod):
    assert post_json(client, "/api/basket/items", {"product": rod.slug, "quantity": 1}).status_code == 200
    client.get("/checkout/")
    response = client.post(
        "/checkout/",
        {"name": "Ada Angler", "email": "ada@example.com", **US, "postcode": "55802", "card_number": CARD},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    order = PlacedOrder.objects.get()
    assert (order.city, order.region, order.postcode) == ("Duluth", "MN", "55802")

    page = client.get(response["Location"]).content.decode()
    address = re.search(r"<address[^>]*>(.*?)</address>", page, re.S).group(1)
    assert address.split("<br>") == ["Ada Angler", "12 Lake Avenue", "Duluth, MN 55802", "United States"]


@pytest.mark.django_db(transaction=True)
def test_a_bad_zip_code_is_400_naming_it_and_places_nothing(client, legacy_api, rod):
    assert post_json(client, "/api/basket/items", {"product": rod.slug, "quantity": 2}).status_code == 200
    response = client.post(
        "/checkout/",
        {"name": "Ada Angler", "email": "ada@example.com", **US, "region": "", "postcode": "558", "card_number": CARD},
    )
    content = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid ZIP code, like 55802 or 55802-1234." in content
    assert "Choose your state." in content
    assert '<label for="id_postcode">ZIP code</label>' in content
    assert not PlacedOrder.objects.exists()
    assert basket_lines(_basket(client)) == {rod.slug: 2}


def _basket(client):
    from shop.models import Basket

    return Basket.objects.filter(session_key=client.session.session_key).first()


def test_the_checkout_page_carries_every_countrys_labels_for_its_script(client, rod):
    assert post_json(client, "/api/basket/items", {"product": rod.slug, "quantity": 1}).status_code == 200
    page = client.get("/checkout/").content.decode()
    assert 'id="address-conventions"' in page and "shop/address.js" in page
    assert '"postcodeLabel": "Postal code"' in page
    # Without the script, a shopper of any country can fill it in: every field, generic labels.
    assert '<label for="id_region">State, province or territory</label>' in page
    assert 'data-address-field="county" hidden' not in page


@pytest.mark.parametrize(("name", "valid"), [("می\u200cخواهم", True), ("Zoë Ångström", True), ("Ada\x07Angler", False)])
def test_the_checkout_takes_a_name_by_the_buy_nows_rule(name, valid):
    form = CheckoutForm(
        {
            "name": name,
            "email": "ada@example.com",
            "card_number": CARD,
            "country": "United Kingdom",
            "address_line": "1 Pier Road",
            "city": "Whitby",
            "postcode": "YO21 3PU",
        }
    )
    assert form.is_valid() is valid, form.errors
    if not valid:
        assert list(form.errors) == ["name"]
