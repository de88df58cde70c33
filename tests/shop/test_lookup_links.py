"""Signed links to one's own order (shop.order_links): the confirmation email's, opened in any
browser, grant that one order; a tampered, expired or misplaced one is refused with a page that
says so; "My orders" links guest and sale orders the same way."""

from __future__ import annotations

import base64
import contextlib
import re
import time
import zlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.cache import cache
from django.test import Client

from orders.models import OrderStatus
from shop import order_links
from shop.emails import Confirmation, order_confirmation_send
from shop.models import PlacedOrder, VerifiedEmail
from tests.shop import test_orders
from tests.shop.test_buy_now import buy
from tests.shop.test_orders import lookup

# The order pages' own fixtures, shared with their first test file.
make_order = test_orders.make_order
make_sale_order = test_orders.make_sale_order


@pytest.fixture(autouse=True)
def nothing_counted_yet(counting_clock_pinned):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def adas_order(make_order) -> PlacedOrder:
    return make_order(number="FS-100001", email="ada@example.com")


@pytest.fixture
def order_service_down(settings, closed_port_url):
    settings.LEGACY_API_URL = closed_port_url


def link_in(message) -> str:
    """The order link of an email, as a path a test client can open."""
    url = re.search(r"https?://\S+/orders/\S+", message.body).group(0)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def tampered(path: str) -> str:
    last = path[-1]
    return path[:-1] + ("A" if last != "A" else "B")


@pytest.mark.django_db(transaction=True)
def test_the_confirmation_emails_link_opens_the_order_in_another_browser_and_nowhere_else(
    client, legacy_api, rod, mailoutbox
):
    answer = buy(client, rod, key="key-link-1", customer={"name": "Ada Angler", "email": "Ada@Example.com"})
    assert answer.status_code == 201, answer.content
    number = answer.json()["number"]
    assert len(mailoutbox) == 1
    path = link_in(mailoutbox[0])
    assert path.startswith(f"/orders/{number}/?access=")
    assert "ada@example.com" not in path.lower() and "/orders/lookup/" not in mailoutbox[0].body

    elsewhere, stranger = Client(), Client()
    opened = elsewhere.get(path)

    assert opened.status_code == 302
    assert opened["Location"] == f"/orders/{number}/"
    page = elsewhere.get(f"/orders/{number}/")
    assert page.status_code == 200 and number in page.content.decode()
    assert stranger.get(f"/orders/{number}/").status_code == 404
    refused = stranger.get(tampered(path))
    assert refused.status_code == 403
    assert "This link is not valid" in refused.content.decode()
    assert stranger.get(f"/orders/{number}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_receipt_keeps_the_cards_last_digits_and_an_older_receipt_asks_the_order_service(client, legacy_api, rod):
    answer = buy(client, rod, key="key-digits-1", payment={"card_number": "4000 0566 5566 5556"})
    assert answer.status_code == 201, answer.content
    number = answer.json()["number"]
    assert PlacedOrder.objects.get(number=number).card_last4 == "5556"
    assert lookup(Client(), number, "ada@example.com", card_last4="4242").status_code == 404
    assert lookup(Client(), number, "ada@example.com", card_last4="5556").status_code == 302

    PlacedOrder.objects.filter(number=number).update(card_last4="")  # recorded before the column

    assert lookup(Client(), number, "ada@example.com", card_last4="4242").status_code == 404
    assert lookup(Client(), number, "ada@example.com", card_last4="5556").status_code == 302


def test_a_sale_orders_emailed_link_shows_its_status_to_that_browser_only(make_sale_order, mailoutbox):
    order = make_sale_order(email="Ada@Example.com", legacy_number="L00000042")
    order_confirmation_send(
        Confirmation(
            number=order.number,
            name="Ada Angler",
            email=order.customer_email,
            lines=[("Muskie Casting Rod", 2)],
            total_cents=29998,
        )
    )
    path = link_in(mailoutbox[0])
    buyer, stranger = Client(), Client()

    opened = buyer.get(path)

    assert opened.status_code == 302 and opened["Location"] == "/orders/T000001/"
    html = buyer.get("/orders/T000001/").content.decode()
    assert "<span data-order-number>T000001</span>" in html
    assert "data-order-status>Complete</span>" in html and "$299.98" in html
    assert '<td class="num order-line-price">$149.99</td>' in html and "$149.99 each" in html
    assert "<strong data-order-total>$299.98</strong>" in html
    assert "L00000042" not in html  # the warehouse's number is not the buyer's
    assert stranger.get("/orders/T000001/").status_code == 404


def test_an_expired_link_is_refused_with_a_page_that_says_so(adas_order, monkeypatch):
    minted_at = time.time() - timedelta(days=31).total_seconds()
    monkeypatch.setattr(order_links, "_now", lambda: minted_at)
    old = order_links.order_link_path(number="FS-100001", email="ada@example.com")
    monkeypatch.setattr(order_links, "_now", lambda: minted_at + timedelta(days=29).total_seconds())
    still_fresh = order_links.order_link_path(number="FS-100001", email="ada@example.com")
    monkeypatch.undo()
    client = Client()

    refused = client.get(old)

    assert refused.status_code == 403
    html = refused.content.decode()
    assert 'data-refused="expired"' in html and "This link has expired." in html
    assert 'href="/orders/lookup/"' in html
    assert client.get("/orders/FS-100001/").status_code == 404
    assert client.get(still_fresh).status_code == 302


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: "not-a-token", id="garbage"),
        pytest.param(lambda: "", id="empty"),
        pytest.param(
            lambda: signing.dumps({"n": "FS-100001", "e": "ada@example.com", "x": int(time.time()) + 9999}),
            id="signed-for-another-purpose",
        ),
        pytest.param(
            lambda: order_links.order_access_token(number="FS-100002", email="ada@example.com"),
            id="for-another-order",
        ),
        pytest.param(
            lambda: order_links.order_access_token(number="FS-100001", email="ada@example.com")[:-3],
            id="cut-short",
        ),
    ],
)
def test_a_link_that_is_not_one_we_made_for_this_order_is_refused(adas_order, forge, make_order):
    make_order(number="FS-100002", email="ada@example.com")
    client = Client()

    refused = client.get(f"/orders/FS-100001/?access={forge()}")

    assert refused.status_code == 403
    assert 'data-refused="invalid"' in refused.content.decode()
    assert client.get("/orders/FS-100001/").status_code == 404


def readable_parts(token: str) -> list[bytes]:
    """What anyone who reads an access log gets from a link's token without a key."""
    found = []
    for part in re.split(r"[:.]", token):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError:
            continue
        found.append(raw)
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(raw))
    return found


def test_a_links_token_gives_the_buyers_email_to_nobody_who_reads_it(adas_order):
    path = order_links.order_link_path(number="FS-100001", email="Ada@Example.com")
    token = path.split("?access=", 1)[1]

    assert all(b"ada@example.com" not in part.lower() for part in readable_parts(token))
    client = Client()
    assert client.get(path).status_code == 302
    assert client.get("/orders/FS-100001/").status_code == 200


def test_a_link_emailed_before_links_were_sealed_still_opens_its_order(adas_order):
    payload = {"n": "FS-100001", "e": "ada@example.com", "x": int(time.time()) + 9999}
    token = signing.dumps(payload, salt=order_links.SALT, compress=True)
    client = Client()

    assert client.get(f"/orders/FS-100001/?access={token}").status_code == 302
    assert client.get("/orders/FS-100001/").status_code == 200


def test_a_link_for_an_email_the_order_does_not_carry_opens_nothing(adas_order):
    token = order_links.order_access_token(number="FS-100001", email="mallory@example.com")
    client = Client()

    assert client.get(f"/orders/FS-100001/?access={token}").status_code == 404
    assert client.get("/orders/FS-100001/").status_code == 404


def test_a_failed_sale_order_s_page_says_nothing_was_charged(make_sale_order):
    order = make_sale_order(email="ada@example.com", status=OrderStatus.FAILED)
    buyer = Client()

    found = lookup(buyer, order.number, "ada@example.com", card_last4="4242")
    html = found.content.decode()

    assert "<strong data-order-total>Nothing</strong>" in html and "$299.98</strong>" not in html


def test_my_orders_links_guest_and_sale_orders_by_signed_links_that_open_them(
    make_order, make_sale_order, customer, order_service_down
):
    make_order(number="FS-300002", email="Angler@Example.com")  # placed signed out
    make_sale_order(email="angler@example.com")
    VerifiedEmail.objects.create(user=customer, email="angler@example.com")
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    links = {number: path for path, number in re.findall(r'href="(/orders/([^/"]+)/\?access=[^"]+)"', html)}
    assert set(links) == {"FS-300002", "T000001"}
    assert "/orders/lookup/?number=" not in html
    for number, path in links.items():
        opened = client.get(path.replace("&amp;", "&"))
        assert opened.status_code == 302 and opened["Location"] == f"/orders/{number}/"
        assert client.get(f"/orders/{number}/").status_code == 200


def test_a_processing_sale_orders_link_shows_it_processing(make_sale_order):
    order = make_sale_order(email="ada@example.com", status=OrderStatus.PROCESSING)
    path = order_links.order_link_path(number=order.number, email="ada@example.com")
    client = Client()

    assert client.get(path).status_code == 302
    html = client.get(f"/orders/{order.number}/").content.decode()
    assert 'status-processing" data-order-status>Processing</span>' in html
