"""What the processes log names no buyer's mailbox or card number: a confirmation the mail
server refuses is logged with its traceback, whose exception names the address it refused."""

from __future__ import annotations

import io
import logging
import smtplib

import pytest
from django.db import transaction

from config.redaction import redacted
from shop import confirmations, emails

BUYER = "jane.refused@example.org"


@pytest.fixture
def console() -> io.StringIO:
    """What the console handler of the shop's LOGGING writes."""
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert handlers, "the root logger has no console handler"
    written = io.StringIO()
    previous = [handler.setStream(written) for handler in handlers]
    yield written
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


@pytest.mark.django_db(transaction=True)
def test_a_confirmation_the_mail_server_refuses_is_logged_without_the_buyers_address(console, monkeypatch):
    def refuse(**_kwargs):
        raise smtplib.SMTPRecipientsRefused({BUYER: (550, b"5.1.1 mailbox unavailable")})

    monkeypatch.setattr(emails, "send_mail", refuse)
    with transaction.atomic():
        confirmations.order_confirmation_on_commit(
            emails.Confirmation(number="T000042", name="Jane", email=BUYER, lines=[("Rod", 1)], total_cents=14999)
        )

    written = console.getvalue()
    assert "T000042" in written and "SMTPRecipientsRefused" in written
    assert "jane.refused" not in written
    assert "@example.org" in written  # the domain says which mail server refused it


def test_a_card_number_in_a_logged_exception_keeps_only_its_last_four_digits(console):
    try:
        raise ValueError("could not read {'card_number': '4111 1111 1111 1111'}")
    except ValueError:
        logging.getLogger("shop").exception("order body from %s refused", "ann@example.com")

    written = console.getvalue()
    assert "4111 1111 1111 1111" not in written and "…1111" in written
    assert "ann@" not in written and "ValueError" in written


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("{'ann.b+tag@example.org': (550, b'no')}", "{'…@example.org': (550, b'no')}"),
        ("card 4242-4242-4242-4242.", "card [card …4242]."),
        ("card 4242424242424241", "card 4242424242424241"),  # no card: its check digit is wrong
        ("succeeded in 0.4242424242424242s", "succeeded in 0.4242424242424242s"),
        ("h3w@vm ready.", "h3w@vm ready."),  # a Celery node's name
        ("GET /orders/?email=ann@example.org HTTP/1.1", "GET /orders/?email=…@example.org HTTP/1.1"),
        ("ann.o'neil@example.com refused", "…@example.com refused"),
        ("pan-4111111111111111 card.5555555555554444", "pan-[card …1111] card.[card …4444]"),
        ("id 12345678901234567890", "id 12345678901234567890"),  # longer than any card
        ("order T000123 failed", "order T000123 failed"),
        (
            "DETAIL:  Failing row contains (8, L00000019, ann@example.org, Ann B, 1 Main St).",
            "DETAIL:  Failing row contains (…).",
        ),
    ],
)
def test_what_is_cut_out_of_a_line(text, shown):
    assert redacted(text) == shown
