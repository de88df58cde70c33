"""The buyer's confirmation email is kept with the order that completed, not only sent after it:
a mail server that is down, or a process that dies between the order's commit and the send,
leaves it for beat's sweep, which sends it once; it is never lost, and one sender at a time."""

from __future__ import annotations

import json
import smtplib
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from shop import confirmations, emails
from shop.models import OrderEmail, PlacedOrder
from shop.tasks import confirmations_unsent_sweep
from tests.conftest import fresh_process_output

pytestmark = pytest.mark.django_db(transaction=True)


def buy(client, product, *, key: str = "key-1"):
    body = {
        "quantity": 1,
        "customer": {"name": "Ada Angler", "email": "ada@example.com"},
        "payment": {"card_number": "4242424242424242"},
    }
    return client.post(
        f"/shop/{product.category.slug}/{product.slug}/orders",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.fixture
def mail_down(monkeypatch):
    def refuse(**_kwargs):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(emails, "send_mail", refuse)


def due_now(number: str) -> None:
    """The time a failed send waits before it is tried again has passed."""
    OrderEmail.objects.filter(number=number).update(held_until=timezone.now() - timedelta(seconds=1))


def test_an_order_placed_while_the_mail_server_is_down_is_confirmed_once_it_is_back(
    client, legacy_api, rod, monkeypatch
):
    refused = []

    def refuse(**kwargs):
        refused.append(kwargs["recipient_list"])
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    real_send_mail = emails.send_mail
    monkeypatch.setattr(emails, "send_mail", refuse)
    answer = buy(client, rod)
    assert answer.status_code == 201, answer.content  # the order stands
    number = answer.json()["number"]
    assert refused == [["ada@example.com"]] and mail.outbox == []
    kept = OrderEmail.objects.get(number=number)
    assert (kept.sent_at, kept.attempts) == (None, 1)
    assert "SMTPServerDisconnected" in kept.last_error
    assert kept.held_until > timezone.now() + timedelta(seconds=30)  # not hammered: a minute first

    monkeypatch.setattr(emails, "send_mail", real_send_mail)
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 0, "deleted": 0}  # not yet due
    due_now(number)
    assert confirmations_unsent_sweep() == {"sent": 1, "failed": 0, "deleted": 0}
    assert [m.subject for m in mail.outbox] == [f"Your order {number} is confirmed"]
    assert mail.outbox[0].to == ["ada@example.com"]
    assert "Tourney Casting Rod" in mail.outbox[0].body and "$49.99" in mail.outbox[0].body
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 0, "deleted": 0}
    assert len(mail.outbox) == 1
    kept.refresh_from_db()
    assert kept.sent_at is not None and kept.held_until is None and kept.last_error == ""


def test_a_process_that_died_after_the_order_committed_leaves_its_email_to_the_sweep(
    client, legacy_api, rod, monkeypatch
):
    # The process ends between the commit and the send: nothing after the commit runs.
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    answer = buy(client, rod)
    assert answer.status_code == 201
    number = answer.json()["number"]
    assert mail.outbox == []
    assert PlacedOrder.objects.get(number=number).confirmation_sent_at is not None  # claimed once

    assert confirmations_unsent_sweep()["sent"] == 1
    assert [m.subject for m in mail.outbox] == [f"Your order {number} is confirmed"]
    assert buy(client, rod).status_code == 201  # a replay of the same key emails nothing more
    assert confirmations_unsent_sweep()["sent"] == 0
    assert len(mail.outbox) == 1


def test_a_sender_killed_mid_send_holds_the_email_only_until_its_hold_ends(client, legacy_api, rod, monkeypatch):
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    number = buy(client, rod).json()["number"]
    # Another process took it and died before marking it sent.
    held = OrderEmail.objects.filter(number=number).update(
        held_until=timezone.now() + timedelta(seconds=50), attempts=1
    )
    assert held == 1
    assert confirmations_unsent_sweep()["sent"] == 0 and mail.outbox == []
    due_now(number)
    assert confirmations_unsent_sweep()["sent"] == 1
    assert len(mail.outbox) == 1


def test_sends_that_keep_failing_are_spaced_out_and_then_given_up(client, legacy_api, rod, mail_down, settings, caplog):
    settings.SHOP_CONFIRMATION_MAX_ATTEMPTS = 3
    number = buy(client, rod).json()["number"]
    waits = [OrderEmail.objects.get(number=number).held_until - timezone.now()]
    for _ in range(2):
        due_now(number)
        assert confirmations_unsent_sweep() == {"sent": 0, "failed": 1, "deleted": 0}
        waits.append(OrderEmail.objects.get(number=number).held_until - timezone.now())
    # A minute, then twice as long each time.
    assert [round(w.total_seconds() / 60) for w in waits] == [1, 2, 4]
    assert "giving up" in caplog.records[-1].getMessage() and caplog.records[-1].levelname == "ERROR"
    due_now(number)
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 0, "deleted": 0}  # left for a person
    assert OrderEmail.objects.get(number=number).attempts == 3


def test_two_senders_at_once_send_one_email(client, legacy_api, rod, monkeypatch):
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    number = buy(client, rod).json()["number"]
    real_send_mail = emails.send_mail
    both_looked = threading.Barrier(2, timeout=10)
    sent = []

    def slow_send(**kwargs):
        sent.append(kwargs["recipient_list"])
        return real_send_mail(**kwargs)

    monkeypatch.setattr(emails, "send_mail", slow_send)
    results = []

    def sender():
        try:
            both_looked.wait()
            results.append(confirmations.confirmation_send(number))
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["not_held", "sent"]
    assert sent == [["ada@example.com"]] and len(mail.outbox) == 1


def test_an_order_that_rolls_back_writes_and_sends_no_email():
    with pytest.raises(RuntimeError), transaction.atomic():
        confirmations.order_confirmation_on_commit(
            emails.Confirmation(number="L00000099", name="Ada", email="ada@example.com", lines=[], total_cents=100)
        )
        raise RuntimeError("the order's transaction failed")
    assert not OrderEmail.objects.exists() and mail.outbox == []


def test_sent_and_given_up_emails_are_deleted_after_their_days_and_those_still_tried_never(settings):
    settings.SHOP_CONFIRMATION_KEEP_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    common = {"name": "Ada", "email": "ada@example.com", "total_cents": 100, "created_at": old}
    OrderEmail.objects.create(number="L1", sent_at=old, **common)
    OrderEmail.objects.create(number="L2", sent_at=timezone.now() - timedelta(days=29), **common)
    OrderEmail.objects.create(number="L3", attempts=12, **common)  # given up long ago
    recent = {**common, "created_at": timezone.now() - timedelta(days=29)}
    OrderEmail.objects.create(number="L4", attempts=12, **recent)  # given up lately
    OrderEmail.objects.create(number="L5", attempts=1, held_until=timezone.now() + timedelta(hours=1), **common)
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 0, "deleted": 2}
    assert sorted(OrderEmail.objects.values_list("number", flat=True)) == ["L2", "L4", "L5"]


@pytest.mark.parametrize("deployment", ["all", "monolith", "hotpath"])
def test_every_deployment_s_beat_sends_what_was_not_sent(deployment):
    # The hot path's workers confirm its orders too: its Lambda beat sweeps them as well.
    script = (
        "import django; django.setup(); from django.conf import settings; from config.celery import app; "
        "app.loader.import_default_modules(); tasks = [e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values()]; "
        "name = 'shop.tasks.confirmations_unsent_sweep'; print(name in tasks and name in app.tasks)"
    )
    assert fresh_process_output(script, SHOP_DEPLOYMENT=deployment) == "True"


def test_a_sweep_stops_at_the_first_refusal_and_leaves_the_rest_for_the_next(client, legacy_api, rod, monkeypatch):
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    first = buy(client, rod, key="key-1").json()["number"]
    second = buy(client, rod, key="key-2").json()["number"]
    tried = []

    def refuse(**kwargs):
        tried.append(kwargs["subject"])
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(emails, "send_mail", refuse)
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 1, "deleted": 0}
    assert tried == [f"Your order {first} is confirmed"]  # the oldest first, and only it
    assert OrderEmail.objects.get(number=second).attempts == 0


def test_a_sweep_while_a_slow_send_is_under_way_leaves_it_to_its_sender(client, legacy_api, rod, monkeypatch):
    """A live send holds its row for minutes, far longer than any mail server's answers take:
    a sweep meanwhile does not send it a second time."""
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    number = buy(client, rod).json()["number"]
    real_send_mail = emails.send_mail
    in_send, finish = threading.Event(), threading.Event()

    def slow_send(**kwargs):
        in_send.set()
        assert finish.wait(10)
        return real_send_mail(**kwargs)

    monkeypatch.setattr(emails, "send_mail", slow_send)
    results = []

    def sender():
        try:
            results.append(confirmations.confirmation_send(number))
        finally:
            connection.close()

    slow = threading.Thread(target=sender)
    slow.start()
    assert in_send.wait(10)
    assert confirmations_unsent_sweep() == {"sent": 0, "failed": 0, "deleted": 0}
    finish.set()
    slow.join()
    assert results == ["sent"] and len(mail.outbox) == 1


def test_in_production_without_a_mail_server_the_email_is_kept_not_printed_as_sent(settings, capsys):
    """The console's "sent" reaches no buyer: with no mail server set, production keeps the
    email, saying why, and sends it once one is."""
    settings.DJANGO_ENV = "production"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    with transaction.atomic():
        confirmations.order_confirmation_on_commit(
            emails.Confirmation(
                number="T000007", name="Ada", email="ada@example.com", lines=[("Rod", 1)], total_cents=14999
            )
        )
    kept = OrderEmail.objects.get(number="T000007")
    assert kept.sent_at is None and "no mail server is set (EMAIL_HOST)" in kept.last_error
    assert kept.attempts == 0  # not an attempt: it waits for a mail server, never given up
    assert "T000007" not in capsys.readouterr().out

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    due_now("T000007")
    assert confirmations_unsent_sweep()["sent"] == 1
    assert [m.subject for m in mail.outbox] == ["Your order T000007 is confirmed"]


def test_an_address_the_mail_server_refuses_does_not_stop_the_others(client, legacy_api, rod, monkeypatch):
    monkeypatch.setattr(confirmations, "_send_after_commit", lambda number, kind: None)
    first = buy(client, rod, key="key-1").json()["number"]
    second = buy(client, rod, key="key-2").json()["number"]
    real_send_mail = emails.send_mail

    def refuse_the_first(**kwargs):
        if first in kwargs["subject"]:
            raise smtplib.SMTPRecipientsRefused({"ada@example.com": (550, b"no such mailbox")})
        return real_send_mail(**kwargs)

    monkeypatch.setattr(emails, "send_mail", refuse_the_first)
    assert confirmations_unsent_sweep() == {"sent": 1, "failed": 1, "deleted": 0}
    assert [m.subject for m in mail.outbox] == [f"Your order {second} is confirmed"]
    assert OrderEmail.objects.get(number=first).attempts == 1


@pytest.mark.parametrize(
    ("kind", "opening"),
    [(emails.CONFIRMED, "Thank you for your order L00000042."), (emails.NOT_PLACED, "We could not place your order")],
)
def test_each_email_s_first_sentence_starts_with_a_capital(mailoutbox, kind, opening):
    emails.order_confirmation_send(
        emails.Confirmation(
            number="L00000042",
            name="Ada Angler",
            email="ada@example.com",
            lines=[("Tourney Casting Rod", 2)],
            total_cents=9998,
            kind=kind,
            reason="Your card was declined; nothing was charged.",
        )
    )

    assert mailoutbox[0].body.startswith(f"Hello Ada Angler,\n\n{opening}"), mailoutbox[0].body
