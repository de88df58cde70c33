"""The buy-now page as the server renders it in each state of its sale (open, sold out, not
started, ended): the banner, the picture's tag, the stock's words and its bar say the same thing,
the form is there only while the sale takes orders (else a line says what the buyer can do), and
the header is the shop's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import SaleAllocation
from tests.orders.conftest import PREFIX

pytestmark = pytest.mark.django_db


def page(client) -> str:
    response = client.get(PREFIX)
    assert response.status_code == 200
    return response.content.decode()


def banner(html: str) -> str:
    return re.search(r'<div class="container" id="sale-banner-text">(.*?)</div>', html).group(1)


def tag(html: str) -> str:
    return re.search(r'<span class="sale-tag"[^>]*>(.*?)</span>', html).group(1)


def meter(html: str) -> str:
    return re.search(r'<div class="sale-bar" id="stock-meter"[^>]*>', html).group(0)


def bar_width(html: str) -> str:
    return re.search(r'<rect id="stock-bar" width="(\d+)%"', html).group(1)


def button(html: str) -> str:
    return re.search(r'<button id="buy-button"[^>]*>(.*?)</button>', html).group(0)


def form_tag(html: str) -> str:
    return re.search(r'<form id="buy"[^>]*>', html).group(0)


def closed_note(html: str) -> tuple[str, str]:
    """The note that stands in for the form: its opening tag and its words."""
    found = re.search(r'(<div class="sale-closed"[^>]*>)\s*<p id="sale-closed-text">(.*?)</p>', html, re.S)
    return found.group(1), found.group(2)


def assert_form_gives_way_to(html: str, words: str) -> None:
    assert form_tag(html).endswith(" hidden>")
    tag, text = closed_note(html)
    assert not tag.endswith(" hidden>") and text == words


def test_an_open_sale_shows_its_banner_tag_and_what_is_left_on_the_bar(client, allocation):
    SaleAllocation.objects.filter(pk=allocation.pk).update(reserved=3, sold=2)
    html = page(client)
    assert banner(html) == "⚡ Flash sale — limited stock, 2 per order"
    assert tag(html) == "Flash sale"
    assert "hidden" not in meter(html) and bar_width(html) == "75"
    assert 'data-state="open"' in html
    assert "disabled" not in button(html)
    assert "hidden" not in form_tag(html)
    note, words = closed_note(html)
    assert note.endswith(" hidden>") and words == ""


def test_the_limit_is_per_order_wherever_the_banner_names_it(client, allocation):
    allocation.starts_at = timezone.now() + timedelta(hours=2)
    allocation.save()
    html = page(client)
    assert "per customer" not in html
    assert html.count("2 per order") == 3  # the words for open and not started, and the banner shown


def test_a_sold_out_sale_says_so_everywhere_and_its_bar_is_empty(client, allocation):
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=20)
    html = page(client)
    assert banner(html) == "⚡ Flash sale — sold out"
    assert tag(html) == "Sold out"
    assert 'class="sale-stock is-sold-out"' in html and bar_width(html) == "0"
    assert "limited stock" not in banner(html)
    assert "disabled" in button(html) and "Sold out</button>" in button(html)
    assert_form_gives_way_to(
        html, "Every unit of this sale is taken. If an order falls through, its units come back on sale here."
    )


def test_a_sale_not_started_shows_when_it_starts_and_no_bar(client, allocation):
    allocation.starts_at = timezone.now() + timedelta(hours=2)
    allocation.save()
    html = page(client)
    assert banner(html).startswith("⚡ Flash sale — starts ") and banner(html).endswith("UTC, 2 per order")
    assert "limited stock" not in banner(html)
    assert tag(html) == "Coming soon"
    assert "Sale starts" in html
    assert "hidden" in meter(html) and bar_width(html) == "0"
    assert "disabled" in button(html) and "Not on sale</button>" in button(html)
    starts = timezone.localtime(allocation.starts_at).strftime("%a %-d %b, %H:%M")
    assert_form_gives_way_to(html, f"Come back on {starts} UTC to order: the sale opens then.")


def test_an_ended_sale_says_it_ended_and_shows_no_bar(client, allocation):
    allocation.ends_at = timezone.now() - timedelta(minutes=1)
    allocation.save()
    SaleAllocation.objects.filter(pk=allocation.pk).update(sold=5)
    html = page(client)
    assert banner(html) == "This flash sale has ended"
    assert tag(html) == "Sale ended"
    assert "The sale has ended" in html
    assert "hidden" in meter(html) and bar_width(html) == "0"
    assert "disabled" in button(html) and "Not on sale</button>" in button(html)
    assert_form_gives_way_to(html, "This sale has ended and takes no more orders.")


def test_every_state_carries_its_words_for_the_script(client, allocation):
    """sale.js changes the banner, tag and stock words, and the note standing in for the form,
    from these when the state moves."""
    allocation.starts_at = timezone.now() + timedelta(hours=2)
    allocation.save()
    html = page(client)
    for state in ("open", "sold-out", "not-started", "ended"):
        assert html.count(f"data-{state}=") >= 2, state
    note = closed_note(html)[0]
    assert all(f"data-{state}=" in note for state in ("sold-out", "not-started", "ended"))


def test_no_sale_price_badge_beside_the_ordinary_price(client, allocation):
    html = page(client)
    assert "Sale price" not in html
    assert re.search(r'<p class="product-detail-price"><span class="price price-large">\$149.99</span></p>', html)


def test_a_price_of_a_thousand_dollars_or_more_is_written_as_the_shop_writes_it(client, product, allocation):
    """The shop's cards say $1,299.99: the sale's page said $1299.99 (and its button $1,299.99
    once the buyer changed the quantity, as sale.js writes it)."""
    product.price_cents = 129999
    product.save()
    html = page(client)
    assert re.search(r'<span class="price price-large">\$1,299\.99</span>', html)
    assert "Buy now — $1,299.99</button>" in html and "$1299.99" not in html


def test_the_header_has_the_shops_links_and_a_hidden_basket_count(client, allocation):
    html = page(client)
    links = re.search(r'<nav class="account-nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert "Find an order" in links and "Sign in" in links and "My orders" not in links
    assert "/accounts/login/?next=/shop/rods/muskie-casting-rod/" in links
    assert re.search(r'<span class="basket-count"[^>]*\bhidden></span>', html)
