"""Password guessing on both sign-in pages is throttled per account and per address: after
the limit, even the right password is refused with the shop's lockout page (429)."""

from __future__ import annotations

import pytest
from django.test import Client

PASSWORD = "a-long-test-password"
LOGINS = ["/admin/login/", "/accounts/login/"]


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 5


@pytest.fixture
def merchant(db, django_user_model):
    return django_user_model.objects.create_user("merchant", "m@example.com", PASSWORD, is_staff=True)


def sign_in(url: str, username: str, password: str, address: str = "203.0.113.9"):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(url, {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_the_right_password_works_before_the_limit(merchant, url):
    for _ in range(4):
        sign_in(url, "merchant", "wrong")

    client, response = sign_in(url, "merchant", PASSWORD)

    assert response.status_code == 302 and signed_in(client)


@pytest.mark.parametrize("url", LOGINS)
def test_wrong_passwords_then_the_right_one_is_refused(merchant, url):
    for _ in range(5):
        sign_in(url, "merchant", "wrong")

    client, response = sign_in(url, "merchant", PASSWORD)

    assert response.status_code == 429 and not signed_in(client)
    assert "Too many attempts" in response.content.decode()


@pytest.mark.parametrize("url", LOGINS)
def test_an_account_is_locked_whichever_address_guesses(merchant, url):
    for n in range(5):
        sign_in(url, "merchant", "wrong", address=f"198.51.100.{n}")

    client, response = sign_in(url, "merchant", PASSWORD, address="192.0.2.200")

    assert response.status_code == 429 and not signed_in(client)


@pytest.mark.parametrize("url", LOGINS)
def test_an_address_is_locked_whichever_accounts_it_guesses(merchant, url):
    for n in range(5):
        sign_in(url, f"someone{n}", "wrong", address="198.51.100.77")

    client, response = sign_in(url, "merchant", PASSWORD, address="198.51.100.77")
    other_client, other = sign_in(url, "merchant", PASSWORD, address="192.0.2.1")

    assert response.status_code == 429 and not signed_in(client)
    assert other.status_code == 302 and signed_in(other_client)


@pytest.mark.parametrize("url", LOGINS)
def test_the_addresses_of_one_ipv6_network_are_one_address(merchant, url):
    """A client given an IPv6 /64 could guess from a new address each time: before, each had its
    own count."""
    for n in range(1, 6):
        sign_in(url, f"someone{n}", "wrong", address=f"2001:db8:5:5::{n:x}")

    client, response = sign_in(url, "merchant", PASSWORD, address="2001:db8:5:5::99")
    other_client, other = sign_in(url, "merchant", PASSWORD, address="2001:db8:5:6::1")

    assert response.status_code == 429 and not signed_in(client)
    assert other.status_code == 302 and signed_in(other_client)


def test_behind_the_edge_the_address_is_the_one_our_proxy_saw(merchant, settings):
    settings.ORDERS_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.ORDERS_TRUSTED_PROXY_HOPS = 1
    for n in range(5):  # a new made-up address each time, then the one the proxy appended
        Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.77").post(
            "/accounts/login/", {"username": f"someone{n}", "password": "wrong"}
        )

    guesser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.99, 198.51.100.77")
    shopper = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    refused = guesser.post("/accounts/login/", {"username": "merchant", "password": PASSWORD})
    allowed = shopper.post("/accounts/login/", {"username": "merchant", "password": PASSWORD})

    assert refused.status_code == 429 and not signed_in(guesser)
    assert allowed.status_code == 302 and signed_in(shopper)
