"""The demo catalogue loader: the workshop's products, pictures, idempotence, the merchant."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from shop.models import Category, Product


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def load_demo(*args: str) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def test_load_demo_loads_the_workshops_catalogue(db, media_root):
    load_demo()

    assert list(Category.objects.values_list("slug", flat=True)) == [
        "rods",
        "reels",
        "hard-baits",
        "soft-baits",
        "swim-baits",
        "tackle-storage",
        "waders",
    ]
    expected = {
        "muskie-casting-rod": ("Muskie Casting Rod", 14999, "rods"),
        "tourney-casting-rod": ("Tourney Casting Rod", 4999, "rods"),
        "spinning-reel": ("Spinning Reel", 2999, "reels"),
        "baitcasting-reel": ("Baitcasting Reel", 29999, "reels"),
        "square-bill-silent-crankbait": ("Square-Bill Silent Crankbait", 639, "hard-baits"),
    }
    for slug, (title, price_cents, category) in expected.items():
        product = Product.objects.get(slug=slug)
        assert (product.title, product.price_cents, product.category.slug) == (title, price_cents, category)
    assert Product.objects.on_sale().count() >= 24
    assert Product.objects.filter(stock=0).count() >= 1
    assert Product.objects.filter(stock__gte=1, stock__lte=5).count() >= 2
    assert not Product.objects.filter(description="").exists()


def test_every_demo_product_has_a_picture_on_disk(db, media_root):
    load_demo()

    for product in Product.objects.all():
        path = Path(media_root) / product.picture.name
        assert path.is_file(), product.slug
        assert path.read_text().startswith("<svg")
        assert f"<title>{product.title}</title>" in path.read_text().replace("&amp;", "&")


def test_load_demo_twice_changes_nothing(db, media_root):
    load_demo()
    before = {
        "categories": list(Category.objects.values_list("pk", "slug", "name", "position")),
        "products": list(Product.objects.values_list("pk", "slug", "price_cents", "stock", "updated_at")),
        "pictures": {p.name: p.stat().st_mtime_ns for p in (Path(media_root) / "products").iterdir()},
        "users": get_user_model().objects.count(),
    }

    output = load_demo()

    after = {
        "categories": list(Category.objects.values_list("pk", "slug", "name", "position")),
        "products": list(Product.objects.values_list("pk", "slug", "price_cents", "stock", "updated_at")),
        "pictures": {p.name: p.stat().st_mtime_ns for p in (Path(media_root) / "products").iterdir()},
        "users": get_user_model().objects.count(),
    }
    assert after == before
    assert "0 new, 0 updated), 0 pictures written" in output


def test_load_demo_keeps_the_merchants_stock_unless_asked(db, media_root):
    load_demo()
    Product.objects.filter(slug="spinning-reel").update(stock=3)

    load_demo()
    assert Product.objects.get(slug="spinning-reel").stock == 3

    load_demo("--reset-stock")
    assert Product.objects.get(slug="spinning-reel").stock == 60


def test_if_empty_does_nothing_when_there_are_products(db, media_root, make_product):
    make_product("a-rod")

    output = load_demo("--if-empty")

    assert "nothing loaded" in output
    assert Product.objects.count() == 1
    assert not get_user_model().objects.filter(username="merchant").exists()


def test_if_empty_loads_an_empty_shop(db, media_root):
    load_demo("--if-empty")

    assert Product.objects.count() >= 24


def test_the_merchant_gets_the_password_from_the_environment(db, media_root, monkeypatch):
    monkeypatch.setenv("MERCHANT_PASSWORD", "a-merchant-test-password")

    load_demo()

    merchant = get_user_model().objects.get(username="merchant")
    assert merchant.is_staff and merchant.is_superuser
    assert merchant.check_password("a-merchant-test-password")


@pytest.mark.parametrize("password", ["short", "password123"])
def test_a_weak_password_from_the_environment_is_refused_naming_it(db, media_root, monkeypatch, password):
    """The superuser of a shop that may face the internet: the admin's own password rules."""
    monkeypatch.setenv("MERCHANT_PASSWORD", password)

    with pytest.raises(CommandError, match="MERCHANT_PASSWORD: "):
        load_demo()

    assert not get_user_model().objects.filter(username="merchant").exists()


def test_without_a_password_one_is_generated_and_printed(db, media_root, monkeypatch):
    monkeypatch.delenv("MERCHANT_PASSWORD", raising=False)

    output = load_demo()

    password = output.split("password ")[1].split()[0]
    assert get_user_model().objects.get(username="merchant").check_password(password)


def test_merchant_password_is_applied_on_every_start(db, media_root, monkeypatch):
    monkeypatch.setenv("MERCHANT_PASSWORD", "the-first-password")
    load_demo("--if-empty")
    monkeypatch.setenv("MERCHANT_PASSWORD", "a-new-password-later")

    output = load_demo("--if-empty")

    assert "nothing loaded" in output
    merchant = get_user_model().objects.get(username="merchant")
    assert merchant.check_password("a-new-password-later")
    assert not merchant.check_password("the-first-password")


@pytest.mark.django_db
def test_load_demo_leaves_a_product_in_the_category_its_open_sale_sells_it_under():
    """The sale's route and its buyers' status URLs are under the product's category."""
    from orders.models import SaleAllocation, SaleState

    call_command("load_demo", stdout=StringIO())
    product = Product.objects.get(slug="muskie-casting-rod")
    sale_rods = Category.objects.create(name="Sale rods", slug="sale-rods")
    Product.objects.filter(pk=product.pk).update(category=sale_rods)
    SaleAllocation.objects.create(product=product, is_hot=True, allocated=5, state=SaleState.OPEN)

    out = StringIO()
    call_command("load_demo", stdout=out)
    assert Product.objects.get(pk=product.pk).category.slug == "sale-rods"
    assert "muskie-casting-rod: left in its category. Muskie Casting Rod's sale is open" in out.getvalue()
