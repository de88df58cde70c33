"""The basket's JSON API: POST/PATCH/DELETE items, its errors, isolation and CSRF."""

from __future__ import annotations

import pytest
from django.test import Client

from shop.models import Basket, BasketLine
from tests.shop.conftest import basket_lines, nothing_written, patch_json, post_json

ITEMS = "/api/basket/items"


def test_add_item_answers_200_with_the_basket_as_json(client, rod):
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["total_cents"] == 2 * 4999
    assert body["lines"] == [
        {
            "product": rod.slug,
            "title": "Tourney Casting Rod",
            "quantity": 2,
            "unit_price_cents": 4999,
            "total_cents": 9998,
            "stock": 10,
            "url": "/shop/rods/tourney-casting-rod/",
        }
    ]
    assert basket_lines(Basket.objects.get()) == {rod.slug: 2}


def test_adding_the_same_product_again_adds_to_its_line(client, rod, reel):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})
    post_json(client, ITEMS, {"product": reel.slug, "quantity": 1})
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 3})

    assert response.status_code == 200
    assert response.json()["count"] == 6
    assert basket_lines(Basket.objects.get()) == {rod.slug: 5, reel.slug: 1}


def test_the_whole_stock_may_be_put_in_the_basket(client, rod):
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 10})

    assert response.status_code == 200
    assert response.json()["count"] == 10


def test_more_than_the_stock_is_409_and_writes_nothing(client, rod):
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 11})

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "insufficient_stock"
    assert "quantity" in body["fields"]
    assert body["available"] == 10
    assert nothing_written()


def test_a_line_that_would_pass_the_stock_is_409_and_keeps_the_line_as_it_was(client, rod):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 8})

    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": 3})

    assert response.status_code == 409
    assert response.json()["error"] == "insufficient_stock"
    assert basket_lines(Basket.objects.get()) == {rod.slug: 8}


def test_a_sold_out_product_is_409(client, make_product):
    sold_out = make_product("sold-out-rod", stock=0)

    response = post_json(client, ITEMS, {"product": sold_out.slug, "quantity": 1})

    assert response.status_code == 409
    assert "sold out" in response.json()["fields"]["quantity"][0]
    assert nothing_written()


def test_malformed_json_is_400_naming_the_body(client, rod):
    response = post_json(client, ITEMS, '{"product": "tourney-casting-rod", "quantity": ')

    assert response.status_code == 400
    assert response.json()["error"] == "invalid" and response.json()["fields"] == {"body": ["Malformed JSON."]}
    assert nothing_written()


def test_a_json_array_is_400_naming_the_body(client, rod):
    response = post_json(client, ITEMS, [{"product": rod.slug, "quantity": 1}])

    assert response.status_code == 400
    assert "body" in response.json()["fields"]
    assert nothing_written()


def test_missing_product_is_400_naming_product(client, rod):
    response = post_json(client, ITEMS, {"quantity": 1})

    assert response.status_code == 400
    assert response.json()["fields"] == {"product": ["This field is required."]}
    assert nothing_written()


def test_missing_quantity_is_400_naming_quantity(client, rod):
    response = post_json(client, ITEMS, {"product": rod.slug})

    assert response.status_code == 400
    assert response.json()["fields"] == {"quantity": ["This field is required."]}
    assert nothing_written()


@pytest.mark.parametrize(
    "quantity",
    [0, -1, 100, 10**12, "2", 2.5, 2.0, True, None, [1], {"n": 1}],
    ids=["zero", "negative", "over-limit", "huge", "string", "fraction", "float", "bool", "null", "list", "object"],
)
def test_a_quantity_that_is_not_a_whole_number_from_1_to_99_is_400_naming_quantity(client, rod, quantity):
    response = post_json(client, ITEMS, {"product": rod.slug, "quantity": quantity})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert list(body["fields"]) == ["quantity"]
    assert nothing_written()


def test_an_unknown_product_is_400_naming_product(client, rod):
    response = post_json(client, ITEMS, {"product": "no-such-rod", "quantity": 1})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["product"]
    assert nothing_written()


def test_an_inactive_product_is_400_naming_product(client, make_product):
    hidden = make_product("hidden-rod", is_active=False)

    response = post_json(client, ITEMS, {"product": hidden.slug, "quantity": 1})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["product"]
    assert nothing_written()


def test_a_soft_deleted_product_is_400_naming_product(client, make_product):
    gone = make_product("gone-rod")
    gone.soft_delete()

    response = post_json(client, ITEMS, {"product": gone.slug, "quantity": 1})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["product"]
    assert nothing_written()


def test_a_product_that_is_not_a_string_is_400_naming_product(client, rod):
    response = post_json(client, ITEMS, {"product": 7, "quantity": 1})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["product"]
    assert nothing_written()


@pytest.mark.parametrize(
    "product",
    [
        "\ud800",
        "spinning-reel\ud800",
        "\udfff-reel",
        "spinning reel",
        " spinning-reel",
        "spinning-reel\u2028",
        "x" * 201,
    ],
    ids=["surrogate", "trailing-surrogate", "low-surrogate", "space", "leading-space", "separator", "too-long"],
)
def test_a_product_that_is_not_a_slug_is_400_naming_product(client, reel, product):
    """A lone surrogate cannot be encoded for the query: it used to come back as a 500."""
    response = post_json(client, ITEMS, {"product": product, "quantity": 1})

    assert response.status_code == 400
    assert response.json()["fields"] == {"product": ["Must be a product slug."]}
    assert nothing_written()


def test_a_lone_surrogate_with_a_valid_csrf_pair_is_400_not_a_server_error(reel):
    client = Client(enforce_csrf_checks=True)
    token = client.get(reel.get_absolute_url()).cookies["csrftoken"].value

    response = client.post(
        ITEMS,
        data=b'{"product": "spinning-reel\\ud800", "quantity": 1}',
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["product"]
    assert nothing_written()


def test_a_form_encoded_body_is_415(client, rod):
    response = client.post(ITEMS, {"product": rod.slug, "quantity": 1})

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert nothing_written()


def test_text_plain_is_415(client, rod):
    response = client.post(ITEMS, data='{"product": "tourney-casting-rod", "quantity": 1}', content_type="text/plain")

    assert response.status_code == 415
    assert nothing_written()


def test_an_oversized_body_is_413(client, rod):
    body = '{"product": "tourney-casting-rod", "quantity": 1, "padding": "' + "x" * 10_000 + '"}'

    response = post_json(client, ITEMS, body)

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert nothing_written()


def test_get_on_the_items_collection_is_405(client, rod):
    response = client.get(ITEMS)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_patch_sets_the_quantity(client, rod):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 1})

    response = patch_json(client, f"{ITEMS}/{rod.slug}", {"quantity": 4})

    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert basket_lines(Basket.objects.get()) == {rod.slug: 4}


def test_patch_past_the_stock_is_409_and_keeps_the_line(client, rod):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 1})

    response = patch_json(client, f"{ITEMS}/{rod.slug}", {"quantity": 11})

    assert response.status_code == 409
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}


def test_patch_to_zero_removes_the_line(client, rod):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})

    response = patch_json(client, f"{ITEMS}/{rod.slug}", {"quantity": 0})

    assert response.status_code == 200
    assert response.json()["lines"] == []
    assert not BasketLine.objects.exists()


def test_delete_removes_the_line(client, rod, reel):
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})
    post_json(client, ITEMS, {"product": reel.slug, "quantity": 1})

    response = client.delete(f"{ITEMS}/{rod.slug}")

    assert response.status_code == 200
    assert [line["product"] for line in response.json()["lines"]] == [reel.slug]


def test_delete_of_a_product_not_in_the_basket_is_404(client, rod):
    response = client.delete(f"{ITEMS}/{rod.slug}")

    assert response.status_code == 404


def test_one_shopper_never_sees_or_changes_another_shoppers_basket(rod, reel):
    alice, bob = Client(), Client()
    post_json(alice, ITEMS, {"product": rod.slug, "quantity": 2})

    assert bob.get("/api/basket").json() == {"lines": [], "count": 0, "total_cents": 0}
    assert bob.delete(f"{ITEMS}/{rod.slug}").status_code == 404
    assert patch_json(bob, f"{ITEMS}/{rod.slug}", {"quantity": 5}).status_code == 404
    post_json(bob, ITEMS, {"product": reel.slug, "quantity": 1})

    assert [line["product"] for line in alice.get("/api/basket").json()["lines"]] == [rod.slug]
    assert [line["product"] for line in bob.get("/api/basket").json()["lines"]] == [reel.slug]
    assert Basket.objects.count() == 2


def test_signed_in_customers_each_have_their_own_basket(rod, reel, customer, other_customer):
    alice, bob = Client(), Client()
    alice.force_login(customer)
    bob.force_login(other_customer)

    post_json(alice, ITEMS, {"product": rod.slug, "quantity": 2})
    post_json(bob, ITEMS, {"product": reel.slug, "quantity": 1})

    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 2}
    assert basket_lines(Basket.objects.get(owner=other_customer)) == {reel.slug: 1}
    assert [line["product"] for line in bob.get("/api/basket").json()["lines"]] == [reel.slug]


def test_an_anonymous_session_never_sees_a_signed_in_customers_basket(rod, customer):
    signed_in, anonymous = Client(), Client()
    signed_in.force_login(customer)
    post_json(signed_in, ITEMS, {"product": rod.slug, "quantity": 2})

    assert anonymous.get("/api/basket").json()["count"] == 0


def test_the_anonymous_basket_is_merged_into_the_customers_on_sign_in(rod, reel, customer):
    # The customer's basket from an earlier visit.
    earlier = Client()
    earlier.force_login(customer)
    post_json(earlier, ITEMS, {"product": rod.slug, "quantity": 1})
    post_json(earlier, ITEMS, {"product": reel.slug, "quantity": 1})
    # Today, shopping before signing in.
    today = Client()
    post_json(today, ITEMS, {"product": rod.slug, "quantity": 2})

    response = today.post("/accounts/login/", {"username": "angler", "password": "a-long-test-password"})

    assert response.status_code == 302
    account = Basket.objects.get(owner=customer)
    assert basket_lines(account) == {rod.slug: 3, reel.slug: 1}
    # Left empty, naming where its lines went (an order placed from it meanwhile takes them there).
    joined = Basket.objects.exclude(pk=account.pk).get()
    assert joined.merged_into == account and not joined.lines.exists() and joined.session_key is None
    assert today.get("/api/basket").json()["count"] == 4


def test_the_merge_never_passes_the_stock(rod, customer):
    earlier = Client()
    earlier.force_login(customer)
    post_json(earlier, ITEMS, {"product": rod.slug, "quantity": 7})
    today = Client()
    post_json(today, ITEMS, {"product": rod.slug, "quantity": 6})

    today.force_login(customer)

    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 10}


def test_a_first_sign_in_keeps_the_anonymous_basket_as_the_customers(rod, customer):
    client = Client()
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})

    client.force_login(customer)

    basket = Basket.objects.get()
    assert basket.owner == customer
    assert basket_lines(basket) == {rod.slug: 2}


def test_signing_out_leaves_the_basket_with_the_customer(rod, customer):
    client = Client()
    client.force_login(customer)
    post_json(client, ITEMS, {"product": rod.slug, "quantity": 2})

    client.post("/accounts/logout/")

    assert client.get("/api/basket").json()["count"] == 0
    assert basket_lines(Basket.objects.get(owner=customer)) == {rod.slug: 2}


def test_the_api_keeps_djangos_csrf_check_for_session_writes(rod):
    client = Client(enforce_csrf_checks=True)
    page = client.get(rod.get_absolute_url())
    token = page.cookies["csrftoken"].value

    refused = post_json(client, ITEMS, {"product": rod.slug, "quantity": 1})
    accepted = post_json(client, ITEMS, {"product": rod.slug, "quantity": 1}, HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert basket_lines(Basket.objects.get()) == {rod.slug: 1}


def test_the_basket_s_answers_are_kept_by_no_cache(client, rod):
    """One shopper's basket: a browser's or a proxy's cache must neither keep nor share it."""
    added = client.post("/api/basket/items", {"product": rod.slug, "quantity": 1}, content_type="application/json")
    changed = client.patch(f"/api/basket/items/{rod.slug}", {"quantity": 2}, content_type="application/json")
    for response in (client.get("/api/basket"), added, changed):
        assert response.status_code == 200, response.content
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
