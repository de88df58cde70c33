"""Order pages: lookup by number, email and the card's last four digits (the shop's orders and
the sale's), the confirmation page's access, My orders with the orders found by a verified
email, and the lookup's throttle per address. The per-number throttle and the signed links
have their own files (test_lookup_throttle, test_lookup_links)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

import config.order_finders
import shop.order_finders
from config.order_finders import SaleOrderFinder
from orders.models import HotOrder, OrderStage, OrderStatus, Reservation
from shop import lookup_throttle
from shop.models import Category, PlacedOrder, Product, VerifiedEmail
from shop.order_finders import GuestOrderFinder
from shop.order_input import email_key
from shop.order_links import order_link_path


@pytest.fixture(autouse=True)
def lookups_not_counted_yet():
    """The lookup's throttle counts in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def legacy_api_down(settings, closed_port_url):
    """Privacy holds whatever the order service says; here it says nothing."""
    settings.LEGACY_API_URL = closed_port_url


@pytest.fixture
def make_order(db):
    counter = iter(range(1, 1000))

    def make(*, number: str, email: str, customer=None, card_last4: str = "4242") -> PlacedOrder:
        n = next(counter)
        return PlacedOrder.objects.create(
            number=number,
            legacy_id=n,
            reference=f"ref-{number}",
            customer=customer,
            email=email,
            name="Ada Angler",
            address_line="1 Lake Road",
            city="Hayward",
            postcode="54843",
            country="United States",
            total_cents=4999,
            card_last4=card_last4,
            processing_ms=42,
        )

    return make


@pytest.fixture
def adas_order(make_order) -> PlacedOrder:
    return make_order(number="FS-100001", email="ada@example.com")


def lookup(client: Client, number: str, email: str, card_last4: str = "4242"):
    return client.post("/orders/lookup/", {"number": number, "email": email, "card_last4": card_last4})


NOT_FOUND = "We could not find an order with that number, email and card."


def test_lookup_with_number_email_and_card_digits_opens_the_order(client, adas_order):
    response = lookup(client, "FS-100001", "ada@example.com")

    assert response.status_code == 302
    assert response["Location"] == "/orders/FS-100001/"
    page = client.get("/orders/FS-100001/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "FS-100001" in html
    assert "Processed in <strong data-processing-ms>42 ms</strong>" in html
    # The order service is down: the receipt is shown without its lines.
    assert "cannot be shown right now" in html


def test_an_order_looked_up_later_is_not_thanked_for_again(client, adas_order):
    """Found days later, the order page still said "Thank you" and how many ms the order system
    took, as the page seen right after the checkout does."""
    PlacedOrder.objects.filter(pk=adas_order.pk).update(placed_at=timezone.now() - timedelta(days=3))
    lookup(client, "FS-100001", "ada@example.com")

    html = client.get("/orders/FS-100001/").content.decode()

    assert "Thank you" not in html and "data-processing-ms" not in html
    assert f"Placed on {timezone.localtime(timezone.now() - timedelta(days=3)):%-d %B %Y} by Ada" in html


def test_lookup_ignores_the_case_of_the_email(client, adas_order):
    assert lookup(client, "FS-100001", "ADA@Example.com").status_code == 302


def test_lookup_with_a_wrong_email_is_not_found_like_a_wrong_number(client, adas_order):
    wrong_email = lookup(client, "FS-100001", "mallory@example.com")
    wrong_number = lookup(Client(), "FS-999999", "ada@example.com")

    assert wrong_email.status_code == wrong_number.status_code == 404
    assert NOT_FOUND in wrong_email.content.decode()
    assert NOT_FOUND in wrong_number.content.decode()
    assert client.get("/orders/FS-100001/").status_code == 404


def test_lookup_with_the_right_number_and_email_but_other_card_digits_is_not_found_the_same_way(client, adas_order):
    wrong_digits = lookup(client, "FS-100001", "ada@example.com", card_last4="0002")
    wrong_email = lookup(Client(), "FS-100001", "mallory@example.com")

    assert wrong_digits.status_code == wrong_email.status_code == 404
    # Nothing on either page tells which of the three was wrong: one message, no field marked.
    for response in (wrong_digits, wrong_email):
        html = response.content.decode()
        assert html.count('role="alert"') == 1 and NOT_FOUND in html
        assert "has-error" not in html and "form-error" not in html
    assert client.get("/orders/FS-100001/").status_code == 404


@pytest.mark.parametrize(
    ("card_last4", "message"),
    [
        ("", "This field is required."),
        ("42", "Enter the last four digits of the card, like 4242."),
        ("42a2", "Enter the last four digits of the card, like 4242."),
        ("٤٢٤٢", "Enter the last four digits of the card, like 4242."),
        ("42424", "Ensure this value has at most 4 characters (it has 5)."),
    ],
)
def test_lookup_without_four_card_digits_is_400_naming_the_field(client, adas_order, card_last4, message):
    response = lookup(client, "FS-100001", "ada@example.com", card_last4=card_last4)

    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'id="id_card_last4"' in html and "has-error" in html
    assert client.get("/orders/FS-100001/").status_code == 404


def test_an_order_recorded_without_card_digits_is_not_found_while_the_order_service_cannot_say_them(client, make_order):
    make_order(number="FS-100009", email="ada@example.com", card_last4="")

    response = lookup(client, "FS-100009", "ada@example.com", card_last4="4242")

    assert response.status_code == 404
    assert NOT_FOUND in response.content.decode()


def test_the_order_page_without_access_is_404(client, adas_order):
    assert client.get("/orders/FS-100001/").status_code == 404


def test_an_unknown_order_number_is_404(client, db):
    assert client.get("/orders/FS-000000/").status_code == 404


def test_another_customers_order_is_404_even_when_signed_in(make_order, customer, other_customer):
    make_order(number="FS-200001", email="angler@example.com", customer=customer)
    owner, rival = Client(), Client()
    owner.force_login(customer)
    rival.force_login(other_customer)

    assert owner.get("/orders/FS-200001/").status_code == 200
    assert rival.get("/orders/FS-200001/").status_code == 404


def test_access_from_a_lookup_stays_with_that_session(client, adas_order):
    lookup(client, "FS-100001", "ada@example.com")

    assert client.get("/orders/FS-100001/").status_code == 200
    assert Client().get("/orders/FS-100001/").status_code == 404


def test_my_orders_lists_only_the_customers_own_orders(make_order, customer, other_customer):
    make_order(number="FS-300001", email="angler@example.com", customer=customer)
    make_order(number="FS-300002", email="rival@example.com", customer=other_customer)
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert "FS-300001" in html
    assert "FS-300002" not in html


def test_my_orders_needs_a_sign_in(client, db):
    response = client.get("/account/orders/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.fixture
def make_sale_order(db):
    category = Category.objects.create(name="Rods", slug="rods")
    product = Product.objects.create(
        category=category, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999, stock=50
    )
    counter = iter(range(1, 1000))

    def make(*, email: str, status: str = OrderStatus.COMPLETE, legacy_number: str = "") -> HotOrder:
        n = next(counter)
        return HotOrder.objects.create(
            number=f"T{n:06d}",
            token=f"token-{n}",
            idempotency_key=f"key-{n}",
            fingerprint="f" * 64,
            product=product,
            quantity=2,
            unit_price_cents=14999,
            customer_name="Ada Angler",
            customer_email=email,
            card_last4="4242",
            status=status,
            stage=OrderStage.SENT_TO_FULFILMENT if status == OrderStatus.COMPLETE else OrderStage.QUEUED,
            reservation=Reservation.CONFIRMED if status == OrderStatus.COMPLETE else Reservation.HELD,
            reserved_until="2030-01-01T00:00:00Z",
            legacy_number=legacy_number,
        )

    return make


@pytest.mark.parametrize(
    ("number", "email"),
    [
        ("T000001", "ada@example.com"),
        ("t000001", "ADA@Example.COM"),
        ("L00000042", "ada@example.com"),
        ("l00000042", "Ada@EXAMPLE.com"),
    ],
)
def test_lookup_finds_a_sale_order_by_its_t_or_l_number_in_any_case_and_shows_its_status(
    client, make_sale_order, number, email
):
    make_sale_order(email="ada@example.com", legacy_number="L00000042")
    response = lookup(client, number, email)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<span data-order-number>T000001</span>" in html
    assert "data-order-status>Complete</span>" in html
    assert "Muskie Casting Rod" in html and "$299.98" in html


def test_a_sale_order_shows_the_buyers_number_and_never_the_warehouses(client, make_sale_order):
    """The legacy API's L-number is the merchant's business: the lookup (by either number) and
    the order's own page show the buyer's T-number alone, as its status URL does."""
    make_sale_order(email="ada@example.com", legacy_number="L00000042")

    for number in ("T000001", "L00000042"):
        html = lookup(client, number, "ada@example.com").content.decode()
        assert "<span data-order-number>T000001</span>" in html
        assert "L00000042" not in html and "Warehouse" not in html
    opened = client.get(order_link_path(number="T000001", email="ada@example.com"))
    html = client.get(opened["Location"]).content.decode()
    assert "<span data-order-number>T000001</span>" in html
    assert "L00000042" not in html and "Warehouse" not in html


def test_lookup_of_a_sale_order_with_another_email_is_not_found(client, make_sale_order):
    make_sale_order(email="ada@example.com", legacy_number="L00000042")
    for number, email, digits in [
        ("T000001", "mallory@example.com", "4242"),
        ("L00000042", "mallory@example.com", "4242"),
        ("T000001", "ada@example.com", "0002"),
        ("L00000042", "ada@example.com", "0002"),
    ]:
        response = lookup(client, number, email, card_last4=digits)
        assert response.status_code == 404
        assert NOT_FOUND in response.content.decode()
        assert "data-order-status" not in response.content.decode()
        assert "Muskie Casting Rod" not in response.content.decode()


def test_lookup_of_a_shop_order_ignores_the_case_of_the_number(client, adas_order):
    assert lookup(client, "fs-100001", "ada@example.com").status_code == 302


def test_lookups_are_throttled_per_address(client, adas_order, monkeypatch):
    monkeypatch.setattr(lookup_throttle, "ADDRESS_LIMIT", 3)
    codes = [lookup(client, f"FS-99999{i}", "ada@example.com").status_code for i in range(3)]
    assert codes == [404, 404, 404]
    refused = lookup(client, "FS-100001", "ada@example.com")  # right this time, but too many tries
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Too many lookups from your address" in refused.content.decode()
    assert client.get("/orders/FS-100001/").status_code == 404
    other_address = Client(REMOTE_ADDR="10.0.0.7")
    assert lookup(other_address, "FS-100001", "ada@example.com").status_code == 302


def test_the_addresses_of_one_ipv6_network_share_its_lookups(adas_order, monkeypatch):
    """A client given an IPv6 /64 has more addresses than any limit counts one by one: before,
    each got its own budget of guesses."""
    monkeypatch.setattr(lookup_throttle, "ADDRESS_LIMIT", 3)
    codes = [
        lookup(Client(REMOTE_ADDR=f"2001:db8:1:2::{n:x}"), f"FS-99999{n}", "ada@example.com").status_code
        for n in range(1, 5)
    ]
    assert codes == [404, 404, 404, 429]
    assert lookup(Client(REMOTE_ADDR="2001:db8:1:3::1"), "FS-100001", "ada@example.com").status_code == 302


def test_a_link_from_an_email_sent_before_the_signed_links_opens_the_lookup_filled_in(client, db):
    html = client.get("/orders/lookup/?number=T000001&email=ada%40example.com").content.decode()
    assert 'value="T000001"' in html and 'value="ada@example.com"' in html


def test_my_orders_shows_the_customers_sale_orders_by_email_with_their_status(
    make_order, make_sale_order, customer, other_customer
):
    make_order(number="FS-300001", email="angler@example.com", customer=customer)
    make_sale_order(email="Angler@Example.com", status=OrderStatus.PROCESSING)
    make_sale_order(email="rival@example.com")
    VerifiedEmail.objects.create(user=customer, email="angler@example.com")
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert "FS-300001" in html and "T000001" in html
    assert "T000002" not in html
    assert '<th scope="col">Status</th>' in html
    assert 'status-processing">Processing</span>' in html
    assert 'status-complete">Complete</span>' in html


def test_my_orders_shows_no_order_found_by_email_while_the_email_is_unverified(make_order, make_sale_order, customer):
    make_order(number="FS-300001", email="angler@example.com", customer=customer)
    make_order(number="FS-300002", email="angler@example.com")  # placed signed out
    make_sale_order(email="angler@example.com")
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    # What the account placed signed in is its own; what carries its email is not, yet.
    assert '<tr data-order="FS-300001">' in html
    assert "FS-300002" not in html and "T000001" not in html
    assert "Some orders may be missing" in html and "angler@example.com" in html
    assert "Email me the link" in html


def test_my_orders_shows_guest_orders_of_the_verified_email_but_not_another_accounts(
    make_order, make_sale_order, customer, other_customer
):
    make_order(number="FS-300002", email="Angler@Example.com")  # placed signed out
    make_order(number="FS-300003", email="angler@example.com", customer=other_customer)
    VerifiedEmail.objects.create(user=customer, email="angler@example.com")
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert '<tr data-order="FS-300002">' in html
    assert "FS-300003" not in html  # another account placed it: it is that account's order
    assert "Some orders may be missing" not in html


def test_a_verification_of_an_old_email_shows_nothing_for_the_new_one(make_sale_order, customer):
    make_sale_order(email="angler@example.com")
    make_sale_order(email="new@example.com")
    VerifiedEmail.objects.create(user=customer, email="angler@example.com")
    customer.email = "new@example.com"  # changed elsewhere (the admin), the proof not moved
    customer.save()
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert "T000001" not in html and "T000002" not in html
    assert "Some orders may be missing" in html


# Addresses PostgreSQL's UPPER() (behind `iexact`) takes for the buyer's: another domain (the
# dotless i's is xn--gmal-nza.com, which anyone may register), another mailbox (the long s).
LOOK_ALIKES = [("bob@gmail.com", "bob@gma\u0131l.com"), ("sam@example.com", "\u017fam@example.com")]


@pytest.mark.parametrize(("buyer", "look_alike"), LOOK_ALIKES)
def test_a_look_alike_of_the_buyers_email_finds_none_of_their_orders(
    client, make_order, make_sale_order, buyer, look_alike
):
    make_order(number="FS-100001", email=buyer)
    make_sale_order(email=buyer.upper(), legacy_number="L00000042")

    for number in ("FS-100001", "T000001", "L00000042"):
        assert lookup(client, number, look_alike).status_code == 404
        assert client.get(order_link_path(number=number, email=look_alike)).status_code == 404
    assert GuestOrderFinder().for_email(email=look_alike) == []
    assert SaleOrderFinder().for_email(email=look_alike) == []
    # The buyer's own, in any case, still are.
    assert lookup(client, "FS-100001", buyer.title()).status_code == 302
    assert lookup(client, "T000001", buyer.title()).status_code == 200


@pytest.mark.postgres
def test_postgresqls_iexact_takes_a_look_alike_for_the_address_the_finders_do_not(make_sale_order):
    make_sale_order(email="bob@gma\u0131l.com")

    # Why the finders compare by email_key: the database's case-insensitive match folds too much.
    assert HotOrder.objects.filter(customer_email__iexact="bob@gmail.com").exists()
    assert SaleOrderFinder().for_email(email="bob@gmail.com") == []


def test_my_orders_lists_the_newest_orders_of_the_address_however_many_look_alikes_came_after(
    make_order, make_sale_order, monkeypatch
):
    monkeypatch.setattr(config.order_finders, "FOR_EMAIL_LIMIT", 2)
    monkeypatch.setattr(shop.order_finders, "FOR_EMAIL_LIMIT", 2)
    for n in range(1, 4):
        make_sale_order(email="bob@gmail.com")
        make_order(number=f"FS-10000{n}", email="Bob@Gmail.com")
    for n in range(4, 7):
        make_sale_order(email="bob@gma\u0131l.com")
        make_order(number=f"FS-10000{n}", email="BOB@GMA\u0131L.COM")

    assert [found.number for found in SaleOrderFinder().for_email(email="bob@gmail.com")] == ["T000003", "T000002"]
    assert [found.number for found in GuestOrderFinder().for_email(email="bob@gmail.com")] == ["FS-100003", "FS-100002"]


@pytest.mark.parametrize("written", ["taro@\uff47\uff4d\uff41\uff49\uff4c.com", "Taro@B\u00dcCHER.de"])
def test_an_order_whose_domain_was_written_in_another_width_or_case_opens_by_its_link(
    client, make_order, make_sale_order, customer, written
):
    """Stored as the buyer typed it (full-width letters from an IME, a capital Ü); its links
    carry the address's key, which is the same address."""
    make_order(number="FS-300001", email=written)
    make_sale_order(email=written)
    customer.email = written
    customer.save()
    VerifiedEmail.objects.create(user=customer, email=email_key(written))

    for number in ("FS-300001", "T000001"):
        opened = client.get(order_link_path(number=number, email=written))
        assert opened.status_code == 302, number
        assert client.get(opened["Location"]).status_code == 200
    signed_in = Client()
    signed_in.force_login(customer)
    html = signed_in.get("/account/orders/").content.decode()
    assert '<tr data-order="FS-300001">' in html and '<tr data-order="T000001">' in html


def test_my_orders_finds_the_orders_of_its_address_however_its_domain_was_written(
    make_order, make_sale_order, customer
):
    make_order(number="FS-300001", email="Ada@B\u00fccher.de")
    make_sale_order(email="ada@xn--bcher-kva.de")
    make_sale_order(email="ada@bucher.de")
    customer.email = "ada@b\u00fccher.de"
    customer.save()
    VerifiedEmail.objects.create(user=customer, email="ada@xn--bcher-kva.de")
    client = Client()
    client.force_login(customer)

    html = client.get("/account/orders/").content.decode()

    assert '<tr data-order="FS-300001">' in html and '<tr data-order="T000001">' in html
    assert "T000002" not in html
