"""A forgotten password (shop.password_reset): the link emailed to the account's address, the
new password it sets once, the addresses it is found by, the limit on links sent to one inbox,
and the sign-in lockout it ends."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client

from shop import password_reset

PASSWORD = "a-long-test-password"
NEW_PASSWORD = "a-new-and-longer-password"


@pytest.fixture(autouse=True)
def nothing_counted_yet(counting_clock_pinned):
    cache.clear()
    yield
    cache.clear()


def ask(client: Client, email: str, address: str = "203.0.113.9"):
    response = client.post("/accounts/password-reset/", {"email": email}, REMOTE_ADDR=address)
    password_reset.links_sent()
    return response


def link_in(message) -> str:
    return re.search(r"https?://\S+/accounts/password-reset/\S+/", message.body).group(0)


def path_of(link: str) -> str:
    return urlsplit(link).path


def test_the_link_emailed_to_the_account_sets_a_new_password_once(client, customer, settings):
    settings.SHOP_BASE_URL = "https://shop.example.com"
    assert "/accounts/password-reset/" in client.get("/accounts/login/").content.decode()

    response = ask(client, "angler@example.com")

    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["angler@example.com"]
    link = link_in(mail.outbox[0])
    # The shop as buyers reach it, not the Host this request named.
    assert link.startswith("https://shop.example.com/accounts/password-reset/")
    form = client.get(path_of(link), follow=True)
    assert "Choose a new password" in form.content.decode()
    weak = client.post(form.redirect_chain[-1][0], {"new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == "/accounts/password-reset/done/"

    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    again = Client().get(path_of(link), follow=True)
    assert "does not work any more" in again.content.decode()


@pytest.mark.parametrize("typed", ["ANGLER@Example.COM", " angler@example.com "])
def test_an_account_is_found_by_its_address_however_it_is_cased(client, customer, typed):
    ask(client, typed)
    assert [m.to for m in mail.outbox] == [["angler@example.com"]]


def test_an_address_with_no_account_is_told_the_same_and_sent_nothing(client, customer):
    response = ask(client, "nobody@example.com")
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_a_look_alike_address_finds_no_account(client, customer, django_user_model):
    # `ı` (dotless i) folds to I in a database's case-insensitive match: another domain.
    django_user_model.objects.create_user("bob", "bob@gmail.com", PASSWORD)
    ask(client, "bob@gmaıl.com")
    assert mail.outbox == []


def test_one_inbox_is_sent_a_few_links_an_hour_whoever_asks(customer):
    for n in range(password_reset.RESET_LIMIT + 2):
        ask(Client(), "angler@example.com", f"198.51.100.{n}")
    assert len(mail.outbox) == password_reset.RESET_LIMIT


def test_every_spelling_of_one_inbox_counts_as_it(customer):
    for n in range(password_reset.RESET_LIMIT):
        ask(Client(), f"Angler+{n}@example.com", f"198.51.100.{n}")  # no such account: nothing sent
    ask(Client(), "angler@example.com", "198.51.100.99")
    assert mail.outbox == []


def test_one_network_is_sent_a_few_links_an_hour_whatever_it_asks_for(django_user_model):
    for n in range(password_reset.RESET_LIMIT + 2):
        django_user_model.objects.create_user(f"angler{n}", f"angler{n}@example.com", PASSWORD)
        ask(Client(), f"angler{n}@example.com", "203.0.113.50")
    assert len(mail.outbox) == password_reset.RESET_LIMIT


def test_a_password_set_through_the_link_ends_the_sign_in_lockout(client, customer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        Client(REMOTE_ADDR="192.0.2.66").post("/accounts/login/", {"username": "angler", "password": "guess"})
    locked = Client(REMOTE_ADDR="203.0.113.9").post("/accounts/login/", {"username": "angler", "password": PASSWORD})
    assert locked.status_code == 429 and "/accounts/password-reset/" in locked.content.decode()

    ask(client, "angler@example.com")
    form = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    signed_in = Client(REMOTE_ADDR="203.0.113.9")
    response = signed_in.post("/accounts/login/", {"username": "angler", "password": NEW_PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in signed_in.session


def test_the_admin_sign_in_offers_the_reset(client, db):
    page = client.get("/admin/login/").content.decode()
    assert "/admin/password-reset/" in page
    assert client.get("/admin/password-reset/")["Location"] == "/accounts/password-reset/"


def test_an_address_is_found_as_mail_reaches_it(client, django_user_model):
    # The one mailbox, its domain written in its own script or as it is sent.
    django_user_model.objects.create_user("ann", "ann@xn--bcher-kva.de", PASSWORD)
    ask(client, "ann@bücher.de")
    assert [m.to for m in mail.outbox] == [["ann@xn--bcher-kva.de"]]


@pytest.mark.parametrize("typed", ["ann.smith@example.com", "Ann.Smith@example.com"])
def test_an_account_whose_address_was_written_with_capitals_is_found(client, django_user_model, typed):
    # Signing up keeps the address as written (a phone capitalises its first letter): the
    # database was asked only for lower-case spellings of it, and no link was ever sent.
    django_user_model.objects.create_user("ann", "Ann.Smith@Example.com", PASSWORD)
    ask(client, typed)
    assert [m.to for m in mail.outbox] == [["Ann.Smith@example.com"]]


class MailServerHeld(EmailBackend):
    """A mail server that answers only once the test lets it (or after 5 s)."""

    let_through = threading.Event()
    answered_in_time: list[bool] = []

    def send_messages(self, messages):
        self.answered_in_time.append(self.let_through.wait(5))
        return super().send_messages(messages)


def test_the_answer_does_not_wait_for_the_mail_server(client, customer, settings):
    # Were the link sent during the request, a slow mail server would make the answer to an
    # address with an account slower than to one without: a way to learn who has an account.
    settings.EMAIL_BACKEND = f"{__name__}.MailServerHeld"
    MailServerHeld.let_through.clear()
    MailServerHeld.answered_in_time.clear()

    response = client.post("/accounts/password-reset/", {"email": "angler@example.com"}, REMOTE_ADDR="203.0.113.9")
    MailServerHeld.let_through.set()  # only after the answer
    password_reset.links_sent()

    assert response["Location"] == "/accounts/password-reset/sent/"
    assert MailServerHeld.answered_in_time == [True]
    assert [m.to for m in mail.outbox] == [["angler@example.com"]]


def test_a_link_that_could_not_be_written_is_logged(client, customer, monkeypatch, caplog):
    # Written after the answer, by the process's mail thread: a failure there reaches no page,
    # and must reach the log rather than vanish with the thread's result.
    monkeypatch.setattr(password_reset.PasswordResetView, "email_template_name", "shop/accounts/no-such-email.txt")

    with caplog.at_level("ERROR", logger="shop.password_reset"):
        response = ask(client, "angler@example.com")

    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []
    assert [r.getMessage() for r in caplog.records if r.name == "shop.password_reset"] == [
        f"could not write the password reset link of account {customer.pk}"
    ]
