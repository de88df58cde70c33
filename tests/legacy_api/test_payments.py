"""The fake card authoriser: the test cards, one authorisation per idempotency key, voids, and
what a well-formed card number is."""

import itertools

import pytest

from legacy_api.models import PaymentAuthorisation
from legacy_api.payments import card_number_problem, luhn_valid, payment_authorise, payment_figures, payment_void

pytestmark = pytest.mark.django_db
_keys = itertools.count()


def next_key() -> str:
    return f"pay-{next(_keys)}"


def test_approved_test_card_is_authorised_with_a_code():
    authorisation = payment_authorise(key=next_key(), card_number="4242424242424242", amount_cents=14999)
    assert authorisation.approved
    assert authorisation.code.startswith("AUTH-")
    assert authorisation.last4 == "4242"


def test_declined_test_card_is_declined():
    authorisation = payment_authorise(key=next_key(), card_number="4000000000000002", amount_cents=14999)
    assert not authorisation.approved
    assert authorisation.decline_reason == "generic_decline"
    assert authorisation.code == ""


def test_insufficient_funds_card_is_declined_with_its_reason():
    authorisation = payment_authorise(key=next_key(), card_number="4000 0000 0000 9995", amount_cents=100)
    assert not authorisation.approved
    assert authorisation.decline_reason == "insufficient_funds"


def test_other_luhn_valid_numbers_are_approved():
    for number in ("5555555555554444", "378282246310005", "6011111111111117"):
        assert payment_authorise(key=next_key(), card_number=number, amount_cents=100).approved


def test_the_same_key_gets_back_the_same_authorisation():
    first = payment_authorise(key="order-1", card_number="4242424242424242", amount_cents=14999)
    again = payment_authorise(key="order-1", card_number="4242424242424242", amount_cents=14999)

    assert first == again
    assert PaymentAuthorisation.objects.filter(approved=True).count() == 1
    assert payment_figures() == {"authorisations": 1, "voids": 0, "declines": 0}


def test_a_voided_authorisation_frees_its_key_for_a_new_one():
    first = payment_authorise(key="order-2", card_number="4242424242424242", amount_cents=100)

    assert payment_void(key="order-2") is True
    assert payment_void(key="order-2") is False
    again = payment_authorise(key="order-2", card_number="4242424242424242", amount_cents=100)

    assert again.approved and again.code != first.code
    assert payment_figures() == {"authorisations": 2, "voids": 1, "declines": 0}


def test_a_decline_is_not_kept_against_the_key():
    declined = payment_authorise(key="order-3", card_number="4000000000000002", amount_cents=100)
    approved = payment_authorise(key="order-3", card_number="4242424242424242", amount_cents=100)

    assert (declined.approved, approved.approved) == (False, True)
    assert payment_figures() == {"authorisations": 1, "voids": 0, "declines": 1}


@pytest.mark.parametrize("number", ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242"])
def test_well_formed_card_numbers_have_no_problem(number):
    assert card_number_problem(number) is None


@pytest.mark.parametrize(
    "number",
    ["", "4242", "42424242424242424242", "4242424242424241", "4242x42424242424", "４２４２４２４２４２４２４２４２"],
)
def test_malformed_card_numbers_are_refused(number):
    assert card_number_problem(number)


def test_luhn_check_digit():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
