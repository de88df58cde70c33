"""Checkout against the real legacy order API over HTTP (served by the live server)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

import legacy_client
from legacy_api import capacity
from legacy_api.models import PaymentAuthorisation
from shop.checkout_reference import SESSION_CHECKOUT_REFERENCE
from shop.confirmations import confirmations_unsent_sweep
from shop.models import Basket, OrderEmail, PlacedOrder, Product
from tests.conftest import free_port
from tests.shop.conftest import basket_lines, post_json

pytestmark = pytest.mark.django_db(transaction=True)

APPROVED = "4242 4242 4242 4242"
DECLINED = "4000000000000002"


def checkout_form(**overrides) -> dict:
    form = {
        "name": "Ada Angler",
        "email": "ada@example.com",
        "address_line": "1 Lake Road",
        "city": "Hayward",
        "region": "WI",
        "postcode": "54843",
        "country": "United States",
        "card_number": APPROVED,
    }
    form.update(overrides)
    return form


def fill_basket(client: Client, product: Product, quantity: int) -> None:
    assert post_json(client, "/api/basket/items", {"product": product.slug, "quantity": quantity}).status_code == 200


def test_checkout_places_the_order_with_the_legacy_api_and_shows_the_confirmation(client, legacy_api, rod, reel):
    fill_basket(client, rod, 2)
    fill_basket(client, reel, 1)
    assert client.get("/checkout/").status_code == 200

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 302
    order = PlacedOrder.objects.get()
    assert response["Location"] == f"/orders/{order.number}/"
    assert order.total_cents == 2 * 4999 + 2999
    assert order.email == "ada@example.com"
    assert order.city == "Hayward"
    # The legacy API is the system of record: it took the stock.
    assert Product.objects.get(pk=rod.pk).stock == 8
    assert Product.objects.get(pk=reel.pk).stock == 19
    # The order of record is there, under the storefront's reference.
    record = legacy_client.order_get(order_id=order.legacy_id)
    assert record.status == 200
    assert record.data["reference"] == order.reference
    assert record.data["number"] == order.number
    # The basket is emptied and the reference is settled.
    assert basket_lines(Basket.objects.first()) == {}
    assert SESSION_CHECKOUT_REFERENCE not in client.session

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert order.number in html
    assert "Tourney Casting Rod" in html and "Spinning Reel" in html
    assert "$129.97" in html
    assert re.search(r"Processed in <strong data-processing-ms>\d+ ms</strong>", html)


def test_a_line_added_in_another_tab_while_the_order_is_placed_stays_in_the_basket(
    client, legacy_api, rod, reel, monkeypatch
):
    """The basket is not locked across the legacy API's call: what the order took leaves it, unit
    for unit, and what another tab added meanwhile is kept to be ordered, not emptied unseen."""
    fill_basket(client, rod, 1)
    place = legacy_client.order_place

    def place_while_another_tab_adds(**kwargs):
        other_tab = Client()
        other_tab.cookies = client.cookies
        fill_basket(other_tab, rod, 1)
        fill_basket(other_tab, reel, 1)
        return place(**kwargs)

    monkeypatch.setattr(legacy_client, "order_place", place_while_another_tab_adds)

    response = client.post("/checkout/", checkout_form())

    order = PlacedOrder.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.number}/"
    assert order.total_cents == 4999
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1, reel.slug: 1}
    assert "is kept there" in client.get(response["Location"]).content.decode()


def basket_shown(page) -> str:
    return re.search(r'name="basket_shown" value="([0-9a-f]+)"', page.content.decode()).group(1)


@pytest.mark.parametrize("change", ["another tab adds a line", "the price changes"])
def test_the_order_is_placed_only_for_the_basket_the_checkout_page_showed(client, legacy_api, rod, reel, change):
    """The buyer confirms what the page shows: a basket changed since (another tab, a new price)
    is not charged unseen. Nothing is sent; the page shows the basket as it is now, and the buyer
    confirms that one."""
    fill_basket(client, rod, 1)
    shown = basket_shown(client.get("/checkout/"))
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    if change == "another tab adds a line":
        fill_basket(client, reel, 1)
    else:
        Product.objects.filter(pk=rod.pk).update(price_cents=5999)

    refused = client.post("/checkout/", checkout_form(basket_shown=shown))

    assert refused.status_code == 409 and 'data-checkout-error="basket_changed"' in refused.content.decode()
    assert not PlacedOrder.objects.exists() and Product.objects.get(pk=rod.pk).stock == 10
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference  # nothing was sent under it
    confirmed = client.post("/checkout/", checkout_form(basket_shown=basket_shown(refused)))
    assert confirmed.status_code == 302
    order = PlacedOrder.objects.get()
    assert order.reference == reference
    assert order.total_cents == (4999 + 2999 if change == "another tab adds a line" else 5999)


def test_a_price_changed_while_the_order_is_being_placed_is_not_charged(client, legacy_api, rod, monkeypatch):
    """The buyer confirmed the basket at its price: a merchant's change in the instant between
    the check and the legacy API's call is for later orders, not this one."""
    fill_basket(client, rod, 2)
    shown = basket_shown(client.get("/checkout/"))
    place = legacy_client.order_place

    def place_after_a_price_change(**kwargs):
        Product.objects.filter(pk=rod.pk).update(price_cents=9999)
        return place(**kwargs)

    monkeypatch.setattr(legacy_client, "order_place", place_after_a_price_change)
    assert client.post("/checkout/", checkout_form(basket_shown=shown)).status_code == 302
    order = PlacedOrder.objects.get()
    assert order.total_cents == 2 * 4999
    record = legacy_client.order_get(order_id=order.legacy_id).data
    assert record["total_cents"] == 2 * 4999
    assert [line["unit_price_cents"] for line in record["lines"]] == [4999]


def test_checkout_emails_the_confirmation_its_page_promises_once(client, legacy_api, rod, mailoutbox):
    fill_basket(client, rod, 2)
    client.post("/checkout/", checkout_form())
    client.post("/checkout/", checkout_form())  # a refresh of the submit: no second order, no second email
    order = PlacedOrder.objects.get()
    page = client.get(f"/orders/{order.number}/").content.decode()
    # Sent as the order committed: the page says so (until then, "is on its way"), and the
    # status in the words My orders uses.
    assert "Its confirmation was sent to ada@example.com." in page
    assert '<span class="status-pill status-complete">Complete</span>' in page
    OrderEmail.objects.update(sent_at=None)
    assert "A confirmation is on its way to ada@example.com." in client.get(f"/orders/{order.number}/").content.decode()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.com"] and order.number in message.subject
    assert "Tourney Casting Rod" in message.body and f"/orders/{order.number}/?access=" in message.body
    assert PlacedOrder.objects.get().confirmation_sent_at is not None


def test_the_checkout_page_mints_the_reference_that_the_submit_sends(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    client.get("/checkout/")
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference

    client.post("/checkout/", checkout_form())

    assert PlacedOrder.objects.get().reference == reference


def test_a_refresh_after_the_order_was_placed_does_not_order_again(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())

    again = client.post("/checkout/", checkout_form())

    assert again.status_code == 302
    assert again["Location"] == f"/orders/{PlacedOrder.objects.get().number}/"  # the order it placed
    assert PlacedOrder.objects.count() == 1
    assert Product.objects.get(pk=rod.pk).stock == 9


def test_a_resubmit_sends_the_same_reference_so_the_order_is_placed_once(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    # The first submit reached the legacy API but its answer was lost (a timeout, a closed tab).
    reference = str(uuid.uuid4())
    session = client.session
    session[SESSION_CHECKOUT_REFERENCE] = reference
    session.save()
    first = legacy_client.order_place(
        reference=reference,
        name="Ada Angler",
        email="ada@example.com",
        lines=[{"product": rod.slug, "quantity": 1}],
        card_number=APPROVED,
    )
    assert first.status == 201

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 302
    order = PlacedOrder.objects.get()
    assert order.reference == reference
    assert order.legacy_id == first.data["id"]
    assert Product.objects.get(pk=rod.pk).stock == 9


def _placed_but_answer_lost(client, rod, quantity: int = 1):
    """The checkout's first submit reached the legacy API and placed the order, but its answer
    was lost (a timeout): the session keeps the reference, as after a 503."""
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    first = legacy_client.order_place(
        reference=reference,
        name="Ada Angler",
        email="ada@example.com",
        lines=[{"product": rod.slug, "quantity": quantity}],
        card_number=APPROVED,
    )
    assert first.status == 201
    return first


@pytest.mark.parametrize("change", ["card", "basket"])
def test_a_retry_with_another_card_or_basket_after_a_lost_answer_gets_the_earlier_order_not_a_second(
    client, legacy_api, rod, mailoutbox, change
):
    fill_basket(client, rod, 1)
    first = _placed_but_answer_lost(client, rod)
    if change == "basket":
        fill_basket(client, rod, 1)  # two rods now

    response = client.post("/checkout/", checkout_form(card_number="5555 5555 5555 4444"))

    order = PlacedOrder.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/orders/{order.number}/"
    assert (order.legacy_id, order.email, order.total_cents) == (first.data["id"], "ada@example.com", 4999)
    assert Product.objects.get(pk=rod.pk).stock == 9  # one order of record, one rod
    page = client.get(response["Location"]).content.decode()
    assert "Your earlier try went through after all" in page
    assert len(mailoutbox) == 1 and order.number in mailoutbox[0].body
    # What was ordered left the basket, unit for unit; what was added since stays to be ordered.
    assert basket_lines(Basket.objects.get()) == ({rod.slug: 1} if change == "basket" else {})
    assert ("What your basket held beyond it is kept there." in page) is (change == "basket")
    assert (
        SESSION_CHECKOUT_REFERENCE not in client.session
        or client.session[SESSION_CHECKOUT_REFERENCE] != order.reference
    )


def test_an_earlier_guest_try_found_after_someone_signs_in_on_the_browser_is_not_theirs(
    client, legacy_api, rod, customer, mailoutbox
):
    """login() keeps a guest's session data, the checkout's reference with it: whoever signs in
    next on that browser may be someone else, and the guest's order is not theirs to see."""
    fill_basket(client, rod, 1)
    _placed_but_answer_lost(client, rod)
    client.force_login(customer)

    response = client.post("/checkout/", checkout_form(email="angler@example.com", card_number="5555555555554444"))

    assert response.status_code == 302 and response["Location"] == "/checkout/"
    guests = PlacedOrder.objects.get()
    assert guests.customer is None and guests.email == "ada@example.com"
    assert (guests.address_line, guests.city, guests.postcode) == ("", "", "")  # not this buyer's address
    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert (
        "went through after all, and was confirmed to the email address it gave"
        in client.get(response["Location"], follow=True).content.decode()
    )
    assert client.get(f"/orders/{guests.number}/").status_code == 404
    assert guests.number not in client.get("/account/orders/").content.decode()
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 1}  # theirs to order
    assert client.post("/checkout/", checkout_form(email="angler@example.com")).status_code == 302
    assert PlacedOrder.objects.get(customer=customer).reference != guests.reference


def test_an_earlier_try_the_legacy_api_will_not_say_about_settles_the_checkout_and_says_so(
    client, legacy_api, rod, monkeypatch
):
    """A lookup refused (a legacy API without it answers 404): the checkout is not left answering
    503 for ever; the buyer is told to look for the earlier try's email before ordering again."""
    from legacy_client import OrderAnswer, Outcome

    fill_basket(client, rod, 1)
    reference = _placed_but_answer_lost(client, rod).data["reference"]
    monkeypatch.setattr(legacy_client, "order_find", lambda **kwargs: OrderAnswer(Outcome.REFUSED, status=404))

    response = client.post("/checkout/", checkout_form(card_number="5555555555554444"))

    assert response.status_code == 409
    assert "look for its confirmation email before you order again" in response.content.decode()
    assert client.session[SESSION_CHECKOUT_REFERENCE] != reference


def _earlier_try_pending(client, *, lease_seconds: int) -> str:
    """The checkout's earlier try, with another body, is still a pending row at the legacy API
    (its request working, or dead once its lease ended); the reference it holds."""
    from tests.legacy_api.conftest import pending

    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    pending(reference, caller="storefront", lease_seconds=lease_seconds, fingerprint="another body's")
    return reference


def test_a_retry_with_another_body_after_an_earlier_try_died_unplaced_is_a_new_order(client, legacy_api, rod):
    """The earlier try died at the legacy API before placing anything (its row's lease ended):
    the lookup drops it, so the checkout settles the reference and the next submit orders."""
    from legacy_api.models import Order

    fill_basket(client, rod, 1)
    reference = _earlier_try_pending(client, lease_seconds=-1)

    refused = client.post("/checkout/", checkout_form())
    placed = client.post("/checkout/", checkout_form())

    assert refused.status_code == 409 and 'data-checkout-error="reference_reused"' in refused.content.decode()
    assert placed.status_code == 302
    order = PlacedOrder.objects.get()
    assert order.reference != reference
    assert not Order.objects.filter(reference=reference).exists()


def test_a_retry_with_another_body_while_the_earlier_try_is_still_placed_waits_with_the_same_reference(
    client, legacy_api, rod
):
    fill_basket(client, rod, 1)
    reference = _earlier_try_pending(client, lease_seconds=60)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 503
    assert "could not tell yet whether your earlier try went through" in response.content.decode()
    assert client.session[SESSION_CHECKOUT_REFERENCE] == reference
    assert not PlacedOrder.objects.exists()


def test_the_reference_survives_an_unavailable_legacy_api_and_is_reused(
    client, settings, live_server, closed_port_url, rod
):
    fill_basket(client, rod, 1)
    settings.LEGACY_API_URL = closed_port_url
    failed = client.post("/checkout/", checkout_form())
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    assert failed.status_code == 503

    settings.LEGACY_API_URL = f"{live_server.url}/legacy-api"
    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 302
    assert PlacedOrder.objects.get().reference == reference


def test_a_declined_card_keeps_the_basket_and_says_so(client, legacy_api, rod):
    fill_basket(client, rod, 2)
    client.get("/checkout/")
    first_reference = client.session[SESSION_CHECKOUT_REFERENCE]

    response = client.post("/checkout/", checkout_form(card_number=DECLINED))

    assert response.status_code == 402
    html = response.content.decode()
    assert 'data-checkout-error="card_declined"' in html
    assert "Your card was declined" in html
    assert "This card was declined." in html  # on the card's field, the one to change
    assert "payment.card_number" not in html  # not listed again by the service's name for it
    assert basket_lines(Basket.objects.get()) == {rod.slug: 2}
    assert not PlacedOrder.objects.exists()
    assert Product.objects.get(pk=rod.pk).stock == 10
    # A declined attempt is settled: the next one is a new order with a new reference.
    assert client.session[SESSION_CHECKOUT_REFERENCE] != first_reference


def test_a_declined_card_then_a_good_card_places_the_order(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form(card_number=DECLINED))

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 302
    assert PlacedOrder.objects.count() == 1


def test_out_of_stock_at_the_legacy_api_keeps_the_basket_and_says_so(client, legacy_api, rod):
    fill_basket(client, rod, 3)
    # Others bought the rest while this shopper was filling in the form.
    Product.objects.filter(pk=rod.pk).update(stock=1)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-checkout-error="out_of_stock"' in html
    # Short by two, not sold out: the buyer hears what is left.
    assert "only 1 is left of Tourney Casting Rod, fewer than your basket holds" in html
    assert "sold out" not in html
    assert basket_lines(Basket.objects.get()) == {rod.slug: 3}
    assert not PlacedOrder.objects.exists()
    assert Product.objects.get(pk=rod.pk).stock == 1


def test_a_product_sold_out_at_the_legacy_api_is_told_sold_out(client, legacy_api, rod):
    fill_basket(client, rod, 2)
    Product.objects.filter(pk=rod.pk).update(stock=0)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 409
    assert "Tourney Casting Rod sold out before we could place your order" in response.content.decode()
    assert basket_lines(Basket.objects.get()) == {rod.slug: 2}


def test_a_legacy_api_that_is_down_keeps_the_basket_and_says_so(client, settings, closed_port_url, rod):
    settings.LEGACY_API_URL = closed_port_url
    fill_basket(client, rod, 1)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 503
    html = response.content.decode()
    assert 'data-checkout-error="unavailable"' in html
    # Not "very busy": nothing answered, and the buyer is not told it is load.
    assert "could not reach our order service" in html and "very busy" not in html
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}
    assert not PlacedOrder.objects.exists()
    assert client.session[SESSION_CHECKOUT_REFERENCE]


def test_an_invalid_form_is_400_and_calls_nobody(client, closed_port_url, settings, rod):
    settings.LEGACY_API_URL = closed_port_url
    fill_basket(client, rod, 1)

    response = client.post("/checkout/", checkout_form(email="not-an-email", card_number="12"))

    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address." in html
    assert "Enter a card number of 12 to 19 digits." in html
    assert "data-checkout-error" not in html
    assert SESSION_CHECKOUT_REFERENCE not in client.session


def test_a_card_number_with_a_wrong_check_digit_is_refused_by_the_form(client, closed_port_url, settings, rod):
    settings.LEGACY_API_URL = closed_port_url
    fill_basket(client, rod, 1)

    response = client.post("/checkout/", checkout_form(card_number="4242 4242 4242 4241"))

    assert response.status_code == 400
    assert "This card number is not valid" in response.content.decode()


def test_checkout_with_an_empty_basket_goes_back_to_the_basket(client, db):
    response = client.get("/checkout/")

    assert response.status_code == 302
    assert response["Location"] == "/basket/"


def test_a_signed_in_customers_order_is_theirs_and_listed_in_their_account(client, legacy_api, rod, customer):
    client.force_login(customer)
    fill_basket(client, rod, 1)

    client.post("/checkout/", checkout_form(email="angler@example.com"))

    order = PlacedOrder.objects.get()
    assert order.customer == customer
    html = client.get("/account/orders/").content.decode()
    assert f'href="/orders/{order.number}/"' in html


def test_a_signed_in_checkout_fills_in_the_name_and_never_the_username(client, rod, customer):
    client.force_login(customer)
    fill_basket(client, rod, 1)

    form = client.get("/checkout/").context["form"]
    assert form.initial == {"name": "", "email": "angler@example.com"}

    customer.first_name, customer.last_name = "Ada", "Angler"
    customer.save()
    assert client.get("/checkout/").context["form"].initial["name"] == "Ada Angler"


@pytest.mark.parametrize(
    ("card", "overrides", "status"),
    # Not the cards the form's help text names, which the page shows anyway.
    [
        ("4000 0000 0000 9995", {}, 402),
        ("5555 5555 5555 4444", {"postcode": ""}, 400),
        ("4242 4242 4242 4241", {}, 400),
    ],
    ids=["declined", "a-field-missing", "not-a-card"],
)
def test_a_checkout_sent_back_never_writes_the_card_number_into_the_page(
    client, legacy_api, rod, card, overrides, status
):
    fill_basket(client, rod, 1)
    client.get("/checkout/")

    response = client.post("/checkout/", checkout_form(card_number=card, **overrides))

    assert response.status_code == status
    html = response.content.decode()
    digits = card.replace(" ", "")
    assert digits not in html.replace(" ", "") and card not in html
    assert re.search(r'<input[^>]*name="card_number"(?![^>]*value=)[^>]*>', html)


def test_a_price_changed_before_a_field_error_is_told_with_it_not_charged_after(client, legacy_api, rod):
    """The page shown again for a field's error carries the basket as it is now: a price changed
    meanwhile is said there, or the next submit would be charged at a price the buyer never
    confirmed."""
    fill_basket(client, rod, 1)
    shown = basket_shown(client.get("/checkout/"))
    Product.objects.filter(pk=rod.pk).update(price_cents=5999)

    wrong = client.post("/checkout/", checkout_form(basket_shown=shown, postcode=""))

    assert wrong.status_code == 400
    html = wrong.content.decode()
    assert 'data-checkout-error="basket_changed"' in html and "a price changed" in html
    assert "$59.99" in html and not PlacedOrder.objects.exists()


def test_the_second_of_two_submits_sent_at_once_leads_to_the_order_the_first_placed(client, legacy_api, rod):
    """A double click: the first submit placed the order and emptied the basket; the second,
    answered "still being placed", kept the checkout's reference in the session. Its retry
    finds the basket empty, and is shown the order, not told to add something."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    reference = client.session[SESSION_CHECKOUT_REFERENCE]
    placed = client.post("/checkout/", checkout_form())
    order = PlacedOrder.objects.get()
    assert placed.status_code == 302 and order.reference == reference
    session = client.session
    session[SESSION_CHECKOUT_REFERENCE] = reference  # as the second submit's answer saved it
    session["shop_checkout_started_by"] = None
    session.save()

    retry = client.post("/checkout/", checkout_form())

    assert retry.status_code == 302 and retry["Location"] == f"/orders/{order.number}/"
    page = client.get(retry["Location"]).content.decode()
    assert "Your earlier try went through after all" in page
    assert PlacedOrder.objects.count() == 1 and SESSION_CHECKOUT_REFERENCE not in client.session


def _every_legacy_slot_taken():
    slots = django_settings.LEGACY_CAPACITY
    return [capacity.backend().slot_acquire(slots) for _ in range(slots)]


def test_an_order_service_over_capacity_is_told_very_busy(client, legacy_api, rod):
    fill_basket(client, rod, 1)
    gate, handles = capacity.backend(), _every_legacy_slot_taken()
    try:
        response = client.post("/checkout/", checkout_form())
    finally:
        for handle in handles:
            gate.slot_release(handle)

    assert response.status_code == 503
    assert "very busy" in response.content.decode()
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}


def test_an_order_service_without_its_gate_is_not_told_as_load(client, legacy_api, rod, monkeypatch):
    """The legacy API's capacity gate (Redis) is away, so it takes no order: before, the buyer
    was told "very busy right now", which blames a load there is not."""
    fill_basket(client, rod, 1)
    away = capacity.RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(capacity, "backend", lambda: away)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 503
    html = response.content.decode()
    assert "very busy" not in html and "cannot take orders just now" in html
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}
    assert not PlacedOrder.objects.exists()


def test_an_order_service_refusal_naming_a_basket_line_tells_the_buyer_what_to_do_not_its_path(
    client, legacy_api, rod, monkeypatch
):
    """Before: "lines.0.unit_price_cents: Ensure this value is less than or equal to 2147483647."
    shown to the buyer, as the legacy API named it."""
    fill_basket(client, rod, 1)
    refusal = {"error": "invalid", "fields": {"lines.0.unit_price_cents": ["Ensure this value is less than 2."]}}
    answer = legacy_client.OrderAnswer(legacy_client.Outcome.INVALID, data=refusal, status=400)
    monkeypatch.setattr(legacy_client, "order_place", lambda **kwargs: answer)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 400
    html = response.content.decode()
    assert "lines.0" not in html and "unit_price_cents" not in html
    assert "Something in your basket cannot be ordered as it is" in html
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}


def test_a_price_the_order_backend_could_never_total_is_refused_in_the_admin(admin_client, rod):
    """On SQLite (the embedded default) the column itself takes any integer: before, the admin saved
    a price no order could ever total. PostgreSQL's integer column refuses it as well."""
    from tests.shop.test_stock import change_form_data

    response = admin_client.post(
        f"/admin/shop/product/{rod.pk}/change/", change_form_data(rod, price_cents="999999999.99")
    )

    assert response.status_code == 200
    assert "price_cents" in response.context["adminform"].form.errors
    rod.refresh_from_db()
    assert rod.price_cents == 4999


def test_an_old_order_s_page_does_not_say_its_confirmation_is_still_on_its_way(client, legacy_api, rod, mailoutbox):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())
    order = PlacedOrder.objects.get()
    assert len(mailoutbox) == 1
    assert "Its confirmation was sent to ada@example.com." in client.get(f"/orders/{order.number}/").content.decode()

    # 31 days on: the sweep deletes the sent row (SHOP_CONFIRMATION_KEEP_DAYS = 30).
    OrderEmail.objects.update(sent_at=timezone.now() - timedelta(days=31))
    confirmations_unsent_sweep()
    assert not OrderEmail.objects.exists()

    page = client.get(f"/orders/{order.number}/").content.decode()
    assert "Its confirmation was sent to ada@example.com." in page


def test_an_order_whose_confirmation_was_given_up_does_not_say_it_is_on_its_way(client, legacy_api, rod, settings):
    fill_basket(client, rod, 1)
    client.post("/checkout/", checkout_form())
    order = PlacedOrder.objects.get()
    OrderEmail.objects.update(sent_at=None, attempts=settings.SHOP_CONFIRMATION_MAX_ATTEMPTS)

    page = client.get(f"/orders/{order.number}/").content.decode()

    assert "could not be delivered to ada@example.com: this page is your receipt" in page


def test_a_submit_from_a_second_tab_after_the_order_is_told_of_it_not_of_an_empty_basket(client, legacy_api, rod):
    """Two tabs of one checkout: the first places the order and empties the basket. Before, the
    second's submit said only "Your basket is empty", as if nothing had been ordered."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    placed = client.post("/checkout/", checkout_form())
    order = PlacedOrder.objects.get()

    second = client.post("/checkout/", checkout_form(), follow=True)

    assert placed["Location"] == f"/orders/{order.number}/"
    assert second.redirect_chain[-1][0] == f"/orders/{order.number}/"
    assert f"Your order {order.number} was placed a moment ago" in second.content.decode()
    assert PlacedOrder.objects.count() == 1


def test_a_basket_over_what_one_order_may_come_to_is_refused_saying_so(client, legacy_api, make_product):
    """The order backend refuses a total past its 32-bit figures: the buyer was told only that
    something in the basket could not be ordered."""
    boat = make_product("bass-boat", price_cents=1_500_000_000, stock=5)
    fill_basket(client, boat, 2)

    response = client.post("/checkout/", checkout_form())

    assert response.status_code == 400
    page = response.content.decode()
    assert "Your basket comes to $30,000,000.00, more than one order may ($21,474,836.47)" in page
    assert not PaymentAuthorisation.objects.exists()


def test_a_later_baskets_submit_emptied_in_another_tab_is_not_told_of_the_earlier_order(client, legacy_api, rod, reel):
    """After ordering the rod the buyer puts a reel in the basket and opens the checkout, and
    another tab removes the reel. Before, the submit said "Your order … was placed a moment ago:
    this is it, charged once" of the rod's order, which holds no reel."""
    fill_basket(client, rod, 1)
    client.get("/checkout/")
    client.post("/checkout/", checkout_form())
    order = PlacedOrder.objects.get()
    fill_basket(client, reel, 1)
    shown = re.search(r'name="basket_shown" value="(\w+)"', client.get("/checkout/").content.decode()).group(1)
    client.post(f"/basket/lines/{reel.slug}/remove/")

    answer = client.post("/checkout/", checkout_form(basket_shown=shown), follow=True)

    told = answer.content.decode()
    assert answer.redirect_chain[-1][0] == "/basket/"
    assert "Your basket is empty" in told and order.number not in told
    assert PlacedOrder.objects.count() == 1
