"""Verification links (shop.accounts) are counted per account and per address they go to,
whichever path sends them: sign-up, a change of email and "send the link again" share one
limit, so none of them, and no number of new accounts, can flood an address."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client

from shop import accounts
from shop.models import VerifiedEmail
from shop.order_input import EMAIL_HIDDEN_CHARACTER, email_key, mailbox_key

# The links are counted in the cache, which outlives each test's database: cleared around each.
from tests.shop.test_accounts import PASSWORD, link_in, nothing_counted_yet, sign_up  # noqa: F401

VICTIM = "victim@example.net"


def mails_to(address: str) -> int:
    return sum(1 for message in mail.outbox if message.to == [address])


def change_email(client: Client, email: str):
    return client.post("/account/", {"email": email, "password": PASSWORD})


def test_changing_the_email_back_and_forth_stops_mailing_links_at_the_limit(db):
    mallory = Client()
    sign_up(mallory, "mallory", "mallory@example.com")
    answers = []
    for _ in range(4):
        answers.append(change_email(mallory, VICTIM).status_code)
        answers.append(change_email(mallory, "mallory@example.com").status_code)

    # Sign-up's link, then one per change until the account's limit; then the change back is
    # refused (a change to the address the account already has sends nothing either).
    assert answers[: accounts.LINK_LIMIT - 1] == [302] * (accounts.LINK_LIMIT - 1)
    assert answers[accounts.LINK_LIMIT - 1] == 400
    assert get_user_model().objects.get(username="mallory").email == VICTIM
    assert len(mail.outbox) == accounts.LINK_LIMIT
    assert mails_to(VICTIM) < accounts.LINK_LIMIT


def test_a_throttled_email_change_names_the_email_field_and_changes_nothing(db):
    owner = Client()
    sign_up(owner, "ada", "ada@example.com")
    for _ in range(accounts.RESEND_LIMIT):
        assert owner.post("/account/email/send-link/").status_code == 302
    assert owner.get(link_in(mail.outbox[-1])).status_code == 302
    sent = len(mail.outbox)

    response = change_email(owner, "ada.new@example.com")

    assert response.status_code == 400
    html = response.content.decode()
    assert '<label for="id_email">' in html
    assert "We have sent several confirmation links" in html and "Your email is unchanged" in html
    assert get_user_model().objects.get(username="ada").email == "ada@example.com"
    assert VerifiedEmail.objects.filter(email="ada@example.com").exists()
    assert len(mail.outbox) == sent


def test_new_accounts_signed_up_with_one_address_mail_it_a_few_links_only(db):
    answers = []
    for n in range(accounts.LINK_LIMIT + 2):
        client = Client()
        response = sign_up(client, f"stranger{n}", VICTIM)
        answers.append((client, response))

    # Every account is created and signed in; the address got the limit's links, no more.
    assert get_user_model().objects.filter(email=VICTIM).count() == accounts.LINK_LIMIT + 2
    assert mails_to(VICTIM) == accounts.LINK_LIMIT
    late_client, late = answers[-1]
    assert late.status_code == 302 and late["Location"] == "/account/"
    html = late_client.get("/account/").content.decode()
    assert f"We did not send a link to {VICTIM}" in html
    assert "Send the link again" in html


def test_every_path_counts_against_the_same_limit_for_an_address(db):
    for n in range(accounts.LINK_LIMIT - 1):
        sign_up(Client(), f"stranger{n}", VICTIM)
    changer = Client()
    sign_up(changer, "changer", "changer@example.com")
    assert change_email(changer, VICTIM).status_code == 302
    assert mails_to(VICTIM) == accounts.LINK_LIMIT

    # The address is at its limit: "send the link again" keeps its 429, a change is refused.
    resend = changer.post("/account/email/send-link/")
    assert resend.status_code == 429
    assert 1 <= int(resend["Retry-After"]) <= accounts.RESEND_WINDOW_SECONDS
    other = Client()
    sign_up(other, "other", "other@example.com")
    assert change_email(other, VICTIM).status_code == 400
    assert get_user_model().objects.get(username="other").email == "other@example.com"
    assert mails_to(VICTIM) == accounts.LINK_LIMIT


def test_the_limit_of_one_address_does_not_hold_back_another(db):
    for n in range(accounts.LINK_LIMIT + 1):
        sign_up(Client(), f"stranger{n}", VICTIM)

    response = sign_up(Client(), "ada", "ada@example.com")

    assert response.status_code == 302 and response["Location"] == "/shop/"
    assert mails_to("ada@example.com") == 1


def test_the_cache_keys_of_the_count_do_not_hold_the_address(db, monkeypatch):
    keys: list[str] = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda key, *args, **kwargs: keys.append(key) or real_add(key, *args, **kwargs))
    user = get_user_model().objects.create_user("ada", "Ada@Example.com", PASSWORD)

    accounts.email_verification_throttle(user=user, email="Ada@Example.com")

    assert len(keys) == 2
    assert not any("ada" in key.lower() or "example" in key.lower() for key in keys)


def test_spellings_of_one_mailbox_share_its_limit(db):
    # Case, width and what the domain's encoding for sending drops (a combining grapheme joiner,
    # a variation selector): every link below goes to yan@example.com.
    spellings = [
        "yan@example.com",
        "YAN@Example.COM",
        "yan@\uff45xample.com",
        "yan@exa\u034fmple.com",
        "yan@EXA\ufe0fMPLE.com",
        "Yan@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
    ]
    for n, email in enumerate(spellings):
        assert sign_up(Client(), f"yan{n}", email).status_code == 302

    assert len(mail.outbox) == accounts.LINK_LIMIT
    assert {email_key(message.to[0]) for message in mail.outbox} == {"yan@example.com"}


def test_quoted_spellings_of_one_mailbox_share_its_limit(db):
    spellings = [VICTIM, '"victim"@example.net', '"v\\ictim"@example.net', '"vi\\ctim"@example.net']
    spellings += ['"victim+1"@example.net', '"vic\\tim"@example.net', '"vict\\im"@example.net']
    for n, email in enumerate(spellings):
        assert sign_up(Client(), f"stranger{n}", email).status_code == 302, email

    assert len(mail.outbox) == accounts.LINK_LIMIT


def test_plus_tags_of_one_mailbox_share_its_limit(db):
    """Mail to victim+1@, victim+2@... lands in victim@'s one inbox: before, each tag was
    counted as an address of its own, and strangers' sign-ups flooded that inbox."""
    for n in range(accounts.LINK_LIMIT * 3):
        assert sign_up(Client(), f"stranger{n}", f"victim+{n}@example.net").status_code == 302

    assert len(mail.outbox) == accounts.LINK_LIMIT
    assert {mailbox_key(message.to[0]) for message in mail.outbox} == {VICTIM}


@pytest.mark.parametrize(
    "email",
    [
        "yan@exa\u200bmple.com",  # zero-width space
        "yan@exa\u00admple.com",  # soft hyphen
        "yan@example.com\u2060",  # word joiner
        '"\x0b"@example.com',  # a control character, quoted
        '"yan\x7f"@example.com',
    ],
)
def test_a_sign_up_with_an_invisible_or_control_character_in_the_email_is_refused_naming_it(db, email):
    response = sign_up(Client(), "yan", email)

    assert response.status_code == 200
    html = response.content.decode()
    # The one error, under the email field.
    assert re.findall(r'<div class="field has-error">\s*<label for="(\w+)">', html) == ["id_email"]
    assert f'<div id="id_email_error" role="alert"><p class="form-error">{EMAIL_HIDDEN_CHARACTER}</p>' in html
    assert not get_user_model().objects.exists()
    assert not mail.outbox
