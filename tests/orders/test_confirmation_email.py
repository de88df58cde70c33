"""The buyer's email for a sale order: a confirmation sent once, when the order completes; a
failed one is told it was not placed, never confirmed."""

import pytest
from django.core import mail

from orders.models import OrderStage
from orders.placement import order_complete, order_fail
from shop import confirmations, emails
from shop.delivery import Delivery
from shop.models import OrderEmail
from shop.receipts import placed_order_record
from tests.orders.conftest import order_accept_as_buyer, order_claimed

pytestmark = pytest.mark.django_db


def test_a_completed_order_is_confirmed_by_email_exactly_once(
    allocation, mailoutbox, django_capture_on_commit_callbacks
):
    order = order_accept_as_buyer(email="ann@example.com", quantity=2)
    with django_capture_on_commit_callbacks(execute=True):
        order_claimed(order.pk)
        order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    # A second delivery of the same order (acks late, redelivered) completes nothing new.
    with django_capture_on_commit_callbacks(execute=True):
        order_claimed(order.pk)
        order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ann@example.com"]
    assert order.number in message.subject
    assert "2 x Muskie Casting Rod" in message.body and "$299.98" in message.body
    assert f"/orders/{order.number}/?access=" in message.body
    assert "L00000007" not in message.body  # the warehouse's number is the merchant's business


def test_a_failed_order_sends_no_confirmation_but_says_it_was_not_placed(
    allocation, mailoutbox, django_capture_on_commit_callbacks
):
    order = order_accept_as_buyer(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        order_claimed(order.pk)
        order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED)
    assert [message.subject for message in mailoutbox] == [f"We could not place your order {order.number}"]
    assert "confirmed" not in mailoutbox[0].body


def test_no_email_leaves_before_the_completion_is_committed(allocation, mailoutbox, django_capture_on_commit_callbacks):
    order = order_accept_as_buyer(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order_claimed(order.pk)
        order_complete(order_id=order.pk, legacy_order_id=8, legacy_number="L00000008")
    assert mailoutbox == [] and callbacks


def _monolith_records(order, *, legacy_id: int) -> None:
    """The monolith's buy-now records the legacy order its request placed under the same key."""
    legacy = {"id": legacy_id, "number": f"L{legacy_id:08d}", "total_cents": order.total_cents, "lines": []}
    delivery = Delivery(name="Ann Angler", email="ann@example.com", address_line="", city="", postcode="", country="")
    placed_order_record(reference=order.reference, legacy=legacy, customer=None, delivery=delivery, processing_ms=5)


def _mail_server_down(**_kwargs):
    raise ConnectionRefusedError("mail server down")


@pytest.mark.parametrize("first", ["monolith", "hot_path"])
def test_one_key_placed_through_both_origins_at_once_is_confirmed_once(
    allocation, mailoutbox, django_capture_on_commit_callbacks, first
):
    """A route switch sent one buyer's key to the monolith's buy-now and to the hot path at the same
    moment: the legacy API placed one order (id 7) for both, under the key's one reference. Before,
    each side's record of it emailed its own confirmation: two emails, two numbers, one charge."""
    order = order_accept_as_buyer(email="ann@example.com", name="Ann Angler")

    def monolith_records_it():
        _monolith_records(order, legacy_id=7)

    def hot_path_completes_it():
        order_claimed(order.pk)
        order_complete(order_id=order.pk, legacy_order_id=7, legacy_number="L00000007")

    steps = [monolith_records_it, hot_path_completes_it]
    for step in steps if first == "monolith" else reversed(steps):
        with django_capture_on_commit_callbacks(execute=True):
            step()

    assert len(mailoutbox) == 1, [message.subject for message in mailoutbox]
    assert mailoutbox[0].to == ["ann@example.com"]


def test_a_hot_order_failed_then_placed_after_all_is_not_told_not_placed_last_when_the_monolith_confirmed_it(
    allocation, django_capture_on_commit_callbacks, monkeypatch
):
    """One key reached both origins. The monolith's buy-now recorded legacy order 9 and confirmed
    it. The hot order was failed (its "not placed" email could not be sent: the mail server was
    down), then found placed after all (legacy order 9). Its own confirmation is the monolith's
    (legacy_id 9 is taken), so the "not placed" waiting out its failed send is withdrawn; before,
    the sweep sent it as the buyer's last word for an order placed and charged."""
    order = order_accept_as_buyer(email="ann@example.com", name="Ann Angler")
    with django_capture_on_commit_callbacks(execute=True):
        _monolith_records(order, legacy_id=9)
    assert [m.subject for m in mail.outbox] == ["Your order L00000009 is confirmed"]

    real_send_mail = emails.send_mail
    monkeypatch.setattr(emails, "send_mail", _mail_server_down)
    order_claimed(order.pk)
    with django_capture_on_commit_callbacks(execute=True):
        order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED)
    monkeypatch.setattr(emails, "send_mail", real_send_mail)
    with django_capture_on_commit_callbacks(execute=True):
        order_complete(order_id=order.pk, legacy_order_id=9, legacy_number="L00000009")
    OrderEmail.objects.update(held_until=None)  # its retry is due
    confirmations.confirmations_unsent_sweep()

    subjects = [m.subject for m in mail.outbox]
    assert f"We could not place your order {order.number}" not in subjects, subjects


def test_a_not_placed_email_in_flight_when_the_order_is_found_placed_is_never_sent_later(
    allocation, django_capture_on_commit_callbacks, monkeypatch
):
    """One key reached both origins; the monolith confirmed legacy order 11. The hot order's "not
    placed" email is being sent (held) when the order is found placed after all, so it cannot be
    withdrawn, and its send fails. Before, the hot order's own confirmation was dropped (legacy
    order 11 was confirmed already) and the sweep later sent "not placed" as the last word."""
    order = order_accept_as_buyer(email="ann@example.com", name="Ann Angler")
    with django_capture_on_commit_callbacks(execute=True):
        _monolith_records(order, legacy_id=11)
    real_send_mail = emails.send_mail
    monkeypatch.setattr(emails, "send_mail", _mail_server_down)
    order_claimed(order.pk)
    with django_capture_on_commit_callbacks(execute=True):
        order_fail(order_id=order.pk, stage=OrderStage.CARD_DECLINED)
    OrderEmail.objects.filter(number=order.number).update(held_until=None)  # its retry is due

    def slow_then_down(**_kwargs):
        # While the sweep holds the "not placed" email (a slow mail server), the worker finds the
        # order placed after all: its withdraw cannot take a held row.
        with django_capture_on_commit_callbacks(execute=True):
            order_complete(order_id=order.pk, legacy_order_id=11, legacy_number="L00000011")
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(emails, "send_mail", slow_then_down)
    confirmations.confirmations_unsent_sweep()
    monkeypatch.setattr(emails, "send_mail", real_send_mail)
    OrderEmail.objects.filter(number=order.number).update(held_until=None)  # its retry is due
    confirmations.confirmations_unsent_sweep()

    subjects = [m.subject for m in mail.outbox]
    assert f"We could not place your order {order.number}" not in subjects, subjects
