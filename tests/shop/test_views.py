"""The storefront's pages: catalogue, stock badges, 404s, the basket page and accounts."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from shop.models import Basket, Product
from tests.shop.conftest import basket_lines


def test_the_root_redirects_to_the_shop(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/shop/"


def test_home_shows_categories_and_featured_products(client, rod, reel):
    reel.is_featured = True
    reel.save()

    response = client.get("/shop/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/shop/rods/"' in html and 'href="/shop/reels/"' in html
    assert "Spinning Reel" in html
    assert '<main id="main"' in html


def test_home_hides_categories_with_nothing_on_sale(client, rod, make_product, reels):
    make_product("hidden-reel", category=reels, is_active=False)

    html = client.get("/shop/").content.decode()

    assert 'class="category-tile category-rods"' in html
    assert 'class="category-tile category-reels"' not in html


def test_a_category_lists_only_products_on_sale(client, rod, make_product):
    make_product("inactive-rod", title="Inactive Rod", is_active=False)
    make_product("deleted-rod", title="Deleted Rod").soft_delete()

    response = client.get("/shop/rods/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Tourney Casting Rod" in html
    assert "Inactive Rod" not in html
    assert "Deleted Rod" not in html
    assert 'aria-current="page">Rods</a>' in html


def test_a_category_sorts_by_price(client, make_product):
    make_product("dear-rod", title="Dear Rod", price_cents=90000)
    make_product("cheap-rod", title="Cheap Rod", price_cents=1000)

    html = client.get("/shop/rods/?sort=-price").content.decode()

    assert html.index("Dear Rod") < html.index("Cheap Rod")


def test_the_pages_answer_head_as_get_without_the_body(client, rod):
    """Monitors, link checkers and caches ask with HEAD: the same answer, no body."""
    for path in ("/shop/", f"/shop/{rod.category.slug}/", f"/shop/{rod.category.slug}/{rod.slug}/", "/basket/"):
        head, get = client.head(path), client.get(path)  # a HEAD first leaves no empty page kept
        assert (head.status_code, head["Content-Type"], head.content) == (200, get["Content-Type"], b""), path
        assert get.status_code == 200 and b"</html>" in get.content, path


def test_an_unknown_category_is_404(client, rod):
    assert client.get("/shop/no-such-category/").status_code == 404


def test_the_product_page_shows_picture_price_breadcrumbs_and_the_add_form(client, rod):
    response = client.get("/shop/rods/tourney-casting-rod/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Tourney Casting Rod</h1>" in html
    assert "$49.99" in html
    assert 'aria-label="Breadcrumb"' in html
    assert 'action="/basket/add/"' in html
    assert '<label for="quantity">Quantity</label>' in html


@pytest.mark.parametrize(
    "url",
    ["/shop/rods/no-such-rod/", "/shop/reels/tourney-casting-rod/", "/shop/nowhere/tourney-casting-rod/"],
    ids=["unknown-product", "wrong-category", "unknown-category"],
)
def test_an_unknown_or_misfiled_product_is_404(client, rod, reels, url):
    assert client.get(url).status_code == 404


def test_an_inactive_product_is_404(client, make_product):
    make_product("resting-rod", is_active=False)

    assert client.get("/shop/rods/resting-rod/").status_code == 404


def test_a_soft_deleted_product_is_404(client, make_product):
    make_product("gone-rod").soft_delete()

    assert client.get("/shop/rods/gone-rod/").status_code == 404


@pytest.mark.parametrize(
    ("stock", "badge"),
    [(0, "Sold out"), (1, "Only 1 left"), (3, "Only 3 left"), (5, "Only 5 left"), (6, "In stock")],
)
def test_the_stock_badge_says_what_is_left(client, make_product, stock, badge):
    make_product("badge-rod", stock=stock)

    for url in ("/shop/rods/", "/shop/rods/badge-rod/"):
        assert badge in client.get(url).content.decode()


def test_a_sold_out_product_page_has_no_add_to_basket_form(client, make_product):
    make_product("sold-out-rod", stock=0)

    html = client.get("/shop/rods/sold-out-rod/").content.decode()

    assert "Sold out" in html
    assert 'action="/basket/add/"' not in html


def test_the_add_form_puts_the_product_in_the_basket_and_shows_it(client, rod):
    response = client.post("/basket/add/", {"product": rod.slug, "quantity": 2}, follow=True)

    assert response.redirect_chain[-1][0] == "/basket/"
    html = response.content.decode()
    assert "Tourney Casting Rod" in html
    assert "$99.98" in html
    assert basket_lines(Basket.objects.get()) == {rod.slug: 2}


def test_the_add_form_refuses_more_than_the_stock_and_says_so(client, rod):
    response = client.post("/basket/add/", {"product": rod.slug, "quantity": 11}, follow=True)

    assert response.redirect_chain[-1][0] == rod.get_absolute_url()
    assert "Only 10 of Tourney Casting Rod left" in response.content.decode()
    assert not Basket.objects.exists()


@pytest.mark.parametrize("sent", ["tourney-casting-rod\x00", "tourney casting rod", "x" * 300])
def test_the_add_form_answers_a_product_that_is_no_slug_with_the_404_page(client, rod, sent):
    """Looked up as sent, a null character was a 500: PostgreSQL stores no such text."""
    response = client.post("/basket/add/", {"product": sent, "quantity": 1})

    assert response.status_code == 404
    assert not Basket.objects.exists()


def test_the_basket_page_changes_and_removes_lines(client, rod, reel):
    client.post("/basket/add/", {"product": rod.slug, "quantity": 1})
    client.post("/basket/add/", {"product": reel.slug, "quantity": 1})

    client.post(f"/basket/lines/{rod.slug}/update/", {"quantity": 3})
    client.post(f"/basket/lines/{reel.slug}/remove/")
    html = client.get("/basket/").content.decode()

    assert basket_lines(Basket.objects.get()) == {rod.slug: 3}
    assert "$149.97" in html
    assert 'href="/checkout/"' in html


def test_an_empty_basket_page_invites_to_shop(client, db):
    html = client.get("/basket/").content.decode()

    assert "Your basket is empty" in html
    assert 'href="/checkout/"' not in html


def test_the_header_counts_what_is_in_the_basket(client, rod):
    client.post("/basket/add/", {"product": rod.slug, "quantity": 3})

    html = client.get("/shop/").content.decode()

    assert 'aria-label="3 items in basket">3</span>' in html


def test_sign_up_creates_the_account_and_signs_in(db):
    client = Client()

    response = client.post(
        "/accounts/signup/",
        {
            "username": "newangler",
            "email": "new@example.com",
            "password1": "a-long-test-password",
            "password2": "a-long-test-password",
        },
    )

    assert response.status_code == 302
    user = get_user_model().objects.get(username="newangler")
    assert user.email == "new@example.com"
    assert "Sign out" in client.get("/shop/").content.decode()


def test_sign_in_and_sign_out_pages_work(db, customer):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200

    response = client.post("/accounts/login/", {"username": "angler", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert "My orders" in client.get("/shop/").content.decode()

    client.post("/accounts/logout/")
    assert "Sign in" in client.get("/shop/").content.decode()


def test_a_wrong_password_is_refused_on_the_sign_in_page(db, customer):
    response = Client().post("/accounts/login/", {"username": "angler", "password": "wrong-password"})

    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_a_basket_line_whose_product_sold_out_says_sold_out_and_offers_removal(client, rod):
    client.post("/basket/add/", {"product": rod.slug, "quantity": 2})
    rod.stock = 0
    rod.save(update_fields=["stock"])

    html = client.get("/basket/").content.decode()

    assert "Sold out: please remove it from your basket." in html
    assert "Only 0 left" not in html
    assert f'action="/basket/lines/{rod.slug}/remove/"' in html
    assert 'href="/checkout/"' not in html


def test_a_line_no_longer_on_sale_is_not_also_called_in_stock(client, rod):
    client.post("/basket/add/", {"product": rod.slug, "quantity": 1})
    Product.objects.filter(pk=rod.pk).update(is_active=False)

    html = client.get("/basket/").content.decode()

    assert "No longer on sale: please remove it." in html
    assert "In stock" not in html
