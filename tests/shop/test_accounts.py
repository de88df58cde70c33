"""Verified emails (shop.accounts): the link a sign-up emails, what it unlocks in My orders
(the sale's orders and guests' orders found by email), what refuses it, what drops it, and
the throttle on sending it again."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.cache import cache
from django.test import Client

from orders.models import HotOrder, OrderStage, OrderStatus, Reservation
from shop import accounts
from shop.models import Category, PlacedOrder, Product, VerifiedEmail
from tests.shop import test_orders
from tests.shop.test_orders import LOOK_ALIKES

BUYER_EMAIL = "ada@example.com"
PASSWORD = "a-long-test-password"
make_sale_order = test_orders.make_sale_order


@pytest.fixture(autouse=True)
def nothing_counted_yet(counting_clock_pinned):
    """The resend throttle counts in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def buyers_orders(db) -> dict[str, str]:
    """Ada bought in the sale (the hot path) and once as a guest, both with her email."""
    category = Category.objects.create(name="Rods", slug="rods")
    product = Product.objects.create(
        category=category, title="Muskie Casting Rod", slug="muskie-casting-rod", price_cents=14999, stock=50
    )
    HotOrder.objects.create(
        number="T000001",
        token="token-1",
        idempotency_key="key-1",
        fingerprint="f" * 64,
        product=product,
        quantity=2,
        unit_price_cents=14999,
        customer_name="Ada Angler",
        customer_email="Ada@Example.com",
        card_last4="4242",
        status=OrderStatus.COMPLETE,
        stage=OrderStage.SENT_TO_FULFILMENT,
        reservation=Reservation.CONFIRMED,
        reserved_until="2030-01-01T00:00:00Z",
        legacy_number="L00000042",
    )
    PlacedOrder.objects.create(
        number="FS-700001",
        legacy_id=7001,
        reference="ref-guest",
        customer=None,
        email=BUYER_EMAIL,
        name="Ada Angler",
        total_cents=2999,
        processing_ms=40,
    )
    return {"sale": "T000001", "guest": "FS-700001"}


def sign_up(client: Client, username: str, email: str):
    return client.post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )


def link_in(message) -> str:
    """The path of the verification link in an email, as the recipient would open it."""
    links = re.findall(r"https?://\S+", message.body)
    assert len(links) == 1, message.body
    assert links[0].startswith(f"{settings.SHOP_BASE_URL}/accounts/verify-email/")
    return urlsplit(links[0]).path


def my_orders(client: Client) -> str:
    response = client.get("/account/orders/")
    assert response.status_code == 200
    return response.content.decode()


def test_sign_up_emails_a_link_to_confirm_the_address(db):
    client = Client()

    assert sign_up(client, "ada", BUYER_EMAIL).status_code == 302

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [BUYER_EMAIL]
    assert message.subject == "Confirm your email address for The Fishing Shop"
    assert "3 days" in message.body and "If you did not create this account" in message.body
    assert message.body.startswith("Hello ada,\n\nPlease confirm that ")  # a sentence starts with a capital
    link_in(message)
    assert not VerifiedEmail.objects.exists()


def test_a_field_error_is_tied_to_its_field_for_a_screen_reader(db):
    html = Client().post("/accounts/signup/", {"username": "", "email": "not-an-address"}).content.decode()

    # The field names its error (Django's aria-describedby) and the error carries that id.
    for name in ("username", "email", "password1"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in field
        described_by = re.search(r'aria-describedby="([^"]*)"', field).group(1).split()
        assert f"id_{name}_error" in described_by
        assert all(f'id="{ref}"' in html for ref in described_by)


def test_a_stranger_who_signs_up_with_a_buyers_email_sees_none_of_their_orders(buyers_orders):
    stranger = Client()
    sign_up(stranger, "mallory", BUYER_EMAIL)

    html = my_orders(stranger)

    for number in buyers_orders.values():
        assert number not in html
    assert "Muskie" not in html and "$299.98" not in html and "$29.99" not in html
    assert "Some orders may be missing" in html
    assert 'action="/account/email/send-link/"' in html


def test_the_owner_sees_the_sale_and_guest_orders_after_following_the_link(buyers_orders):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    assert buyers_orders["sale"] not in my_orders(owner)

    response = owner.get(link_in(mail.outbox[-1]))

    assert response.status_code == 302
    assert response["Location"] == "/account/orders/"
    html = my_orders(owner)
    assert '<tr data-order="T000001">' in html and 'status-complete">Complete</span>' in html
    assert '<tr data-order="FS-700001">' in html
    assert "Some orders may be missing" not in html
    assert f"Thank you: {BUYER_EMAIL} is confirmed." in html
    # The guest order's link is a signed one to the order itself, which opens its page.
    guest_link = re.search(r'href="(/orders/FS-700001/\?access=[^"]+)"', html)
    assert guest_link is not None and "/orders/lookup/?number=" not in html
    assert owner.get(guest_link.group(1)).status_code == 302
    assert owner.get("/orders/FS-700001/").status_code == 200
    assert list(VerifiedEmail.objects.values_list("user__username", "email")) == [("ada", BUYER_EMAIL)]


def test_opening_the_link_twice_is_harmless(buyers_orders):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    path = link_in(mail.outbox[-1])

    assert owner.get(path).status_code == 302
    assert owner.get(path).status_code == 302
    assert VerifiedEmail.objects.count() == 1


def test_the_link_opened_signed_out_asks_to_sign_in_and_then_verifies(buyers_orders):
    sign_up(Client(), "ada", BUYER_EMAIL)
    path = link_in(mail.outbox[-1])
    browser = Client()

    response = browser.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/accounts/verify-email/")
    assert not VerifiedEmail.objects.exists()
    signed_in = browser.post("/accounts/login/", {"username": "ada", "password": PASSWORD, "next": path})
    assert signed_in["Location"] == path
    assert browser.get(path)["Location"] == "/account/orders/"
    assert buyers_orders["sale"] in my_orders(browser)


def test_a_link_sent_for_another_account_verifies_nothing(buyers_orders):
    sign_up(Client(), "ada", BUYER_EMAIL)
    adas_link = link_in(mail.outbox[-1])
    stranger = Client()
    sign_up(stranger, "mallory", BUYER_EMAIL)  # the same address, another account

    response = stranger.get(adas_link)

    assert response.status_code == 403
    html = response.content.decode()
    assert "This link was sent for another account." in html
    assert not VerifiedEmail.objects.exists()
    assert buyers_orders["sale"] not in my_orders(stranger)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="signature-changed"),
        pytest.param(lambda token: token.split(":", 1)[1], id="payload-cut"),
        pytest.param(lambda token: "not-a-token", id="garbage"),
    ],
)
def test_a_tampered_token_is_refused_with_a_clear_page(buyers_orders, tamper):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    token = link_in(mail.outbox[-1]).rstrip("/").rsplit("/", 1)[1]

    response = owner.get(f"/accounts/verify-email/{tamper(token)}/")

    assert response.status_code == 400
    html = response.content.decode()
    assert "<h1>This link cannot confirm your email</h1>" in html
    assert "This link is not valid." in html
    assert not VerifiedEmail.objects.exists()
    assert buyers_orders["sale"] not in my_orders(owner)


def test_a_token_signed_for_another_purpose_is_refused(buyers_orders):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    user = get_user_model().objects.get(username="ada")
    # The right payload, signed with the same key but without the verification's salt.
    forged = signing.dumps({"user": user.pk, "email": BUYER_EMAIL}, compress=True)

    assert owner.get(f"/accounts/verify-email/{forged}/").status_code == 400
    assert not VerifiedEmail.objects.exists()


def issued_at(monkeypatch, seconds_ago: int, user) -> str:
    """A token as the link would have carried it `seconds_ago`: the signer reads the clock
    through its module's `time`, which is set back only while the token is signed."""
    now = time.time()
    with monkeypatch.context() as patched:
        patched.setattr(signing, "time", SimpleNamespace(time=lambda: now - seconds_ago))
        return accounts.email_verification_token(user=user)


def test_an_expired_token_is_refused_and_a_recent_one_still_works(buyers_orders, monkeypatch):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    user = get_user_model().objects.get(username="ada")
    expired = issued_at(monkeypatch, accounts.VERIFICATION_MAX_AGE_SECONDS + 60, user)
    recent = issued_at(monkeypatch, accounts.VERIFICATION_MAX_AGE_SECONDS - 3600, user)

    response = owner.get(f"/accounts/verify-email/{expired}/")

    assert response.status_code == 400
    assert "This link has expired." in response.content.decode()
    assert not VerifiedEmail.objects.exists()
    assert owner.get(f"/accounts/verify-email/{recent}/").status_code == 302
    assert buyers_orders["sale"] in my_orders(owner)


def verified_owner(client: Client) -> None:
    sign_up(client, "ada", BUYER_EMAIL)
    assert client.get(link_in(mail.outbox[-1])).status_code == 302


def test_changing_the_email_drops_the_verification(buyers_orders):
    owner = Client()
    verified_owner(owner)
    old_link = link_in(mail.outbox[-1])

    response = owner.post("/account/", {"email": "ada.new@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert get_user_model().objects.get(username="ada").email == "ada.new@example.com"
    assert not VerifiedEmail.objects.exists()
    assert buyers_orders["sale"] not in my_orders(owner)
    # The new address gets its own link; the old one no longer matches the account.
    assert mail.outbox[-1].to == ["ada.new@example.com"]
    refused = owner.get(old_link)
    assert refused.status_code == 400
    assert "an address your account no longer uses" in refused.content.decode()
    # Going back to the old address is not trusted again without a new link.
    owner.post("/account/", {"email": BUYER_EMAIL, "password": PASSWORD})
    assert buyers_orders["sale"] not in my_orders(owner)
    owner.get(link_in(mail.outbox[-1]))
    assert buyers_orders["sale"] in my_orders(owner)


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"email": "ada.new@example.com", "password": "wrong-password"}, "password", "That is not your password."),
        ({"email": "not-an-address", "password": PASSWORD}, "email", "Enter a valid email address."),
        ({"password": PASSWORD}, "email", "This field is required."),
    ],
)
def test_a_bad_email_change_is_refused_naming_the_field_and_changes_nothing(buyers_orders, data, field, error):
    owner = Client()
    verified_owner(owner)
    sent = len(mail.outbox)

    response = owner.post("/account/", data)

    assert response.status_code == 400
    html = response.content.decode()
    assert f'<label for="id_{field}">' in html and error in html
    assert get_user_model().objects.get(username="ada").email == BUYER_EMAIL
    assert VerifiedEmail.objects.count() == 1
    assert len(mail.outbox) == sent


def test_the_account_page_says_whether_the_email_is_confirmed(buyers_orders):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)

    before = owner.get("/account/").content.decode()
    owner.get(link_in(mail.outbox[-1]))
    after = owner.get("/account/").content.decode()

    assert 'data-email-verified="no"' in before and "Not confirmed yet" in before
    assert "Send the link again" in before
    assert 'data-email-verified="yes"' in after and "Confirmed" in after
    assert "Send the link again" not in after


def test_sending_the_link_again_works_a_few_times_an_hour_per_account(buyers_orders):
    owner, other = Client(), Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    sign_up(other, "bob", "bob@example.com")
    sent = len(mail.outbox)

    answers = [owner.post("/account/email/send-link/") for _ in range(accounts.RESEND_LIMIT)]
    refused = owner.post("/account/email/send-link/")

    assert [a.status_code for a in answers] == [302] * accounts.RESEND_LIMIT
    assert len(mail.outbox) == sent + accounts.RESEND_LIMIT
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= accounts.RESEND_WINDOW_SECONDS
    assert "You asked for the link several times already." in refused.content.decode()
    assert len(mail.outbox) == sent + accounts.RESEND_LIMIT
    # Counted per account: another customer is not held back.
    assert other.post("/account/email/send-link/").status_code == 302
    assert mail.outbox[-1].to == ["bob@example.com"]
    # Every link sent works, the last one as well as the first.
    assert owner.get(link_in(mail.outbox[-2])).status_code == 302


def test_sending_the_link_again_from_my_orders_comes_back_there(buyers_orders):
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)

    response = owner.post("/account/email/send-link/", {"next": "/account/orders/"})

    assert response["Location"] == "/account/orders/"
    assert mail.outbox[-1].to == [BUYER_EMAIL]


@pytest.mark.parametrize(("buyer", "look_alike"), LOOK_ALIKES)
def test_an_account_verified_for_a_look_alike_address_sees_only_the_orders_of_that_address(
    db, make_sale_order, buyer, look_alike
):
    for n, email in enumerate([buyer, look_alike], start=1):
        make_sale_order(email=email.upper() if email.isascii() else email)
        PlacedOrder.objects.create(
            number=f"FS-70000{n}",
            legacy_id=7000 + n,
            reference=f"ref-guest-{n}",
            email=email,
            name="Bob Buyer",
            address_line="742 Evergreen Terrace",
            total_cents=2999,
            processing_ms=40,
        )
    other = Client()
    sign_up(other, "mallory", look_alike)
    assert mail.outbox[-1].to == [look_alike]
    assert other.get(link_in(mail.outbox[-1]))["Location"] == "/account/orders/"

    html = my_orders(other)

    assert '<tr data-order="T000002">' in html and '<tr data-order="FS-700002">' in html
    assert "T000001" not in html and "FS-700001" not in html
    # The buyer, verified, still sees theirs however the case was written.
    owner = Client()
    sign_up(owner, "bob", buyer.capitalize())
    owner.get(link_in(mail.outbox[-1]))
    html = my_orders(owner)
    assert '<tr data-order="T000001">' in html and '<tr data-order="FS-700001">' in html
    assert "T000002" not in html and "FS-700002" not in html


def test_the_account_pages_need_a_sign_in(db):
    client = Client()
    for method, path in (("get", "/account/"), ("post", "/account/email/send-link/")):
        response = getattr(client, method)(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert not mail.outbox


def test_a_sign_up_whose_email_cannot_be_sent_still_creates_the_account(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    client = Client()

    response = sign_up(client, "ada", BUYER_EMAIL)

    assert response["Location"] == "/account/"
    assert get_user_model().objects.filter(username="ada").exists()
    html = client.get("/account/").content.decode()
    assert "We could not send the link to confirm your email." in html
    assert "Send the link again" in html


def sign_up_in(page, shop_url: str, username: str) -> None:
    page.goto(f"{shop_url}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", BUYER_EMAIL)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_chromium_only_the_owner_who_opens_the_emailed_link_sees_the_sale_order(
    buyers_orders, live_server, settings, browser
):
    from playwright.sync_api import expect

    settings.SHOP_BASE_URL = live_server.url
    stranger = browser.new_context().new_page()
    owner = browser.new_context().new_page()
    for page in (stranger, owner):
        page.set_default_timeout(20_000)

    sign_up_in(stranger, live_server.url, "mallory")
    sign_up_in(owner, live_server.url, "ada")
    owners_link = f"{live_server.url}{link_in(mail.outbox[-1])}"
    stranger.goto(f"{live_server.url}/account/orders/")
    expect(stranger.locator("[data-email-unverified]")).to_contain_text("Some orders may be missing")
    expect(stranger.locator("main")).not_to_contain_text("T000001")

    # The stranger cannot use the owner's link; the owner opens it and sees the order.
    stranger.goto(owners_link)
    expect(stranger.locator("[data-refused]")).to_contain_text("sent for another account")
    owner.goto(owners_link)
    expect(owner).to_have_url(f"{live_server.url}/account/orders/")
    expect(owner.locator('tr[data-order="T000001"]')).to_contain_text("Complete")
    expect(owner.locator("[data-email-unverified]")).to_have_count(0)
    stranger.goto(f"{live_server.url}/account/orders/")
    expect(stranger.locator("main")).not_to_contain_text("T000001")


def test_my_orders_shows_a_failed_order_as_not_charged_not_at_its_total(buyers_orders):
    HotOrder.objects.filter(number="T000001").update(status=OrderStatus.FAILED, stage=OrderStage.CARD_DECLINED)
    owner = Client()
    sign_up(owner, "ada", BUYER_EMAIL)
    owner.get(link_in(mail.outbox[-1]))

    row = re.search(r'<tr data-order="T000001">.*?</tr>', my_orders(owner), re.S).group(0)

    assert "Not charged" in row and "$299.98" not in row
