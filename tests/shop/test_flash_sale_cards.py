"""The storefront's product cards while a product is on a flash sale: the card says "Flash sale"
(its page is the sale's, which shows the sale's own stock), not the stock outside the sale, and
says it from the moment the inventory view folds in the sale's opening until it folds in its
close, kept pages included. Outside the sale's window it says what the sale's page says:
"Coming soon" before the start, "Sale ended" after the end."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from events.consumers import consumer_run_all
from events.services import event_append
from orders.models import SaleAllocation, SaleState
from readmodels.selectors import products_shelf_stock
from shop import page_cache
from shop.models import Product
from shop.stock import stock_changed_append
from tests.events.conftest import settled

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inventory_view_registered(settings):
    settings.EVENT_CONSUMERS = dict(settings.EVENT_CONSUMERS_DEFAULT)
    cache.clear()
    page_cache.pages_forget()
    yield
    cache.clear()
    page_cache.pages_forget()


def sale_event(product: Product, status: str, *, allocated: int = 20, reserved: int = 0, sold: int = 0) -> None:
    """SALE/ALLOCATION/<status> as `sale open`/`sale close` log it, folded into the view."""
    event_append(
        source="shop.merchant",
        detail_type="State change Notification",
        type="SALE",
        subtype="ALLOCATION",
        status=status,
        data={"product": product.slug, "allocated": allocated, "reserved": reserved, "sold": sold},
    )
    settled()
    result = consumer_run_all(consumer="inventory")
    assert not result.failed and not result.dead_lettered, result


def card_of(html: str, title: str) -> str:
    cards = re.findall(r'<article class="product-card[^"]*">.*?</article>', html, re.S)
    found = [card for card in cards if f">{title}</h3>" in card]
    assert len(found) == 1, title
    return found[0]


def badge_of(card: str) -> str:
    return re.search(r'<span class="badge [^"]*">([^<]*)</span>', card).group(1)


@pytest.fixture
def muskie(make_product) -> Product:
    # 25 on hand, 20 of them held for the sale: the storefront alone has 5 (and the view says so).
    product = make_product("muskie-casting-rod", title="Muskie Casting Rod", stock=25, held=20, is_featured=True)
    stock_changed_append(
        source="legacy.api", product=product.slug, on_hand=25, held=20, delta=0, held_delta=20, reason="hold"
    )
    settled()
    assert not consumer_run_all(consumer="inventory").failed
    return product


URLS = ("/shop/", "/shop/rods/")


def test_cards_say_flash_sale_while_the_sale_is_open_and_the_stock_again_once_it_closes(client: Client, muskie):
    for url in URLS:  # the pages are kept from here on
        assert badge_of(card_of(client.get(url).content.decode(), "Muskie Casting Rod")) == "Only 5 left"

    sale_event(muskie, "OPENED")
    for url in URLS:
        card = card_of(client.get(url).content.decode(), "Muskie Casting Rod")
        assert badge_of(card) == "Flash sale" and "left" not in card
        assert 'class="badge badge-sale"' in card and "is-sold-out" not in card

    sale_event(muskie, "CLOSED")
    for url in URLS:
        assert badge_of(card_of(client.get(url).content.decode(), "Muskie Casting Rod")) == "Only 5 left"


def test_a_card_of_a_sold_out_sale_says_sold_out_even_with_stock_outside_the_sale(client: Client, muskie):
    sale_event(muskie, "OPENED", reserved=5, sold=15)
    card = card_of(client.get("/shop/rods/").content.decode(), "Muskie Casting Rod")
    assert badge_of(card) == "Sold out" and 'class="product-card is-sold-out"' in card


def test_other_cards_and_the_storefront_product_page_keep_the_storefront_stock(client: Client, muskie, rod):
    sale_event(muskie, "OPENED")
    html = client.get("/shop/rods/").content.decode()
    assert badge_of(card_of(html, "Tourney Casting Rod")) == "In stock"
    # The storefront's own page of the product (reached when no route sends it to the sale)
    # sells the units outside the sale, and says how many.
    product_page = client.get("/shop/rods/muskie-casting-rod/").content.decode()
    assert "Only 5 left" in product_page


def sale_allocation(product: Product, **window) -> SaleAllocation:
    """The sale's row as `sale open --starts/--ends` leaves it: open, with its window."""
    return SaleAllocation.objects.create(
        product=product, is_hot=True, allocated=20, state=SaleState.OPEN, opened_at=timezone.now(), **window
    )


def test_a_card_says_coming_soon_before_the_window_opens_and_flash_sale_from_then_on_by_itself(client: Client, muskie):
    starts = timezone.now() + timedelta(seconds=1)
    sale_allocation(muskie, starts_at=starts)
    sale_event(muskie, "OPENED")
    for url in URLS:  # kept from here on, pages and stock read alike
        card = card_of(client.get(url).content.decode(), "Muskie Casting Rod")
        assert badge_of(card) == "Coming soon" and 'class="badge badge-coming"' in card
        assert "is-sold-out" not in card and "left" not in card

    time.sleep(max((starts - timezone.now()).total_seconds(), 0) + 0.05)
    # Nothing was written when the window opened: the kept page's card follows the clock.
    for url in URLS:
        assert badge_of(card_of(client.get(url).content.decode(), "Muskie Casting Rod")) == "Flash sale"


def test_a_card_says_sale_ended_once_the_window_has_ended_until_the_sale_is_closed(client: Client, muskie):
    now = timezone.now()
    sale_allocation(muskie, starts_at=now - timedelta(hours=1), ends_at=now - timedelta(seconds=1))
    sale_event(muskie, "OPENED")
    assert badge_of(card_of(client.get("/shop/rods/").content.decode(), "Muskie Casting Rod")) == "Sale ended"

    sale_event(muskie, "CLOSED")
    assert badge_of(card_of(client.get("/shop/rods/").content.decode(), "Muskie Casting Rod")) == "Only 5 left"


def test_the_shelf_stock_carries_the_sale_s_window_as_aware_datetimes(muskie):
    starts, ends = timezone.now() + timedelta(hours=1), timezone.now() + timedelta(hours=2)
    sale_allocation(muskie, starts_at=starts, ends_at=ends)
    assert products_shelf_stock([muskie.pk])[muskie.pk].sale_starts_at is None  # no sale open in the view

    sale_event(muskie, "OPENED")
    stock = products_shelf_stock([muskie.pk])[muskie.pk]
    assert (stock.sale_starts_at, stock.sale_ends_at) == (starts, ends)
    assert stock.sale_window() == "not_started"
    assert stock.sale_window(starts) == "open" and stock.sale_window(ends) == "ended"


def test_a_basket_line_the_sale_took_the_units_of_says_it_is_on_flash_sale_not_sold_out(client: Client, muskie):
    """The buyer put it in the basket before the sale held every unit: the basket sends them to
    the sale's page, where those units are sold, instead of calling it sold out."""
    added = client.post("/api/basket/items", {"product": muskie.slug, "quantity": 3}, content_type="application/json")
    assert added.status_code == 200
    Product.objects.filter(pk=muskie.pk).update(held=25)  # the sale now holds every unit on hand
    sale_event(muskie, "OPENED", allocated=25)

    line = re.search(r'<li class="basket-line[^"]*">.*?</li>', client.get("/basket/").content.decode(), re.S).group(0)

    assert "Sold out" not in line, line
    assert "On flash sale" in line and 'href="/shop/rods/muskie-casting-rod/"' in line
    assert badge_of(line) == "Flash sale"
