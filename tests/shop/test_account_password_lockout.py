"""The password that confirms a change of email (shop.account_forms) is checked as signing in
checks it: wrong guesses count toward django-axes' lockout of the account, and a locked-out
account gets the sign-in page's lockout answer (429) there too."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client

PASSWORD = "a-long-test-password"
LIMIT = 5


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)


def signed_in_as(user) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.post("/accounts/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def change_email(client: Client, password: str):
    return client.post("/account/", {"email": "ada.new@example.com", "password": password})


def email_of(user) -> str:
    return get_user_model().objects.get(pk=user.pk).email


def test_the_right_password_changes_the_email_after_a_few_wrong_ones(ada):
    client = signed_in_as(ada)
    for _ in range(LIMIT - 1):
        wrong = change_email(client, "wrong")
        assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()

    assert change_email(client, PASSWORD).status_code == 302
    assert email_of(ada) == "ada.new@example.com"


def test_wrong_passwords_on_the_account_page_lock_it_and_the_sign_in_like_wrong_sign_ins(ada):
    client = signed_in_as(ada)
    for _ in range(LIMIT):
        change_email(client, "wrong")

    refused = change_email(client, PASSWORD)
    sign_in = Client(REMOTE_ADDR="192.0.2.200").post("/accounts/login/", {"username": "ada", "password": PASSWORD})

    assert refused.status_code == 429 and "Too many attempts" in refused.content.decode()
    assert email_of(ada) == "ada@example.com"
    assert sign_in.status_code == 429 and "Too many attempts" in sign_in.content.decode()
    assert not mail.outbox


def test_wrong_sign_ins_lock_the_account_pages_password_check_too(ada):
    client = signed_in_as(ada)
    guesser = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(LIMIT):
        guesser.post("/accounts/login/", {"username": "ada", "password": "wrong"})

    refused = change_email(client, PASSWORD)

    assert refused.status_code == 429 and "Too many attempts" in refused.content.decode()
    assert email_of(ada) == "ada@example.com"
