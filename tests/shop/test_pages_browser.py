"""The pages a newcomer meets, in a real Chromium at a phone's and a laptop's width: a US address
with its state printed in US order, "Find an order" in a phone's header, a basket line's
quantity that can be updated on a phone, and the merchant's route preview, route tester and
change lists as a merchant sees them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from edge import services as edge_services
from edge.models import Route
from orders.models import DeadLetter, HotOrder, SaleAllocation
from shop.models import PlacedOrder, Product
from tests.edge.conftest import ensure_origins
from tests.shop.conftest import MERCHANT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


def _signed_in_page(browser, demo_shop_url: str, viewport: dict, *, login: str, username: str, button: str):
    """A browser page signed in through the sign-in form at `login`."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}{login}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(MERCHANT_PASSWORD)
    page.get_by_role("button", name=button).click()
    return page


def _merchant_page(browser, demo_shop_url: str, viewport: dict):
    page = _signed_in_page(
        browser, demo_shop_url, viewport, login="/admin/login/", username="merchant", button="Log in"
    )
    page.wait_for_url(f"{demo_shop_url}/admin/")
    return page


def _with_a_reel_in_the_basket(browser, demo_shop_url: str, viewport: dict, *, then: str):
    """A page of a new browser that put one spinning reel in its basket, then opened `then`."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/reels/spinning-reel/")
    page.get_by_role("button", name="Add to basket").click()
    expect(page.locator("[data-basket-count]").first).to_have_text("1")
    page.goto(f"{demo_shop_url}{then}")
    return page


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_a_us_checkout_with_a_state_prints_the_address_in_us_order(demo_shop_url, browser, viewport):
    from playwright.sync_api import expect

    page = _with_a_reel_in_the_basket(browser, demo_shop_url, viewport, then="/checkout/")

    page.get_by_label("Full name").fill("Ada Angler")
    page.get_by_label("Email").fill("ada@example.com")
    # The labels follow the country as it changes, and the states are the country's own.
    page.get_by_label("Country").select_option("Canada")
    expect(page.get_by_label("Postal code")).to_be_visible()
    expect(page.get_by_label("Province or territory")).to_be_visible()
    page.get_by_label("Country").select_option("United Kingdom")
    expect(page.get_by_label("County (optional)")).to_be_visible()
    expect(page.locator('[data-address-field="region"]')).to_be_hidden()
    page.get_by_label("Country").select_option("United States")
    expect(page.locator('[data-address-field="county"]')).to_be_hidden()
    expect(page.locator("#id_region option")).to_have_count(60)  # "Choose…" and the 59 codes

    page.get_by_label("Address").fill("12 Lake Avenue")
    page.get_by_label("City").fill("Duluth")
    page.get_by_label("State").select_option("MN")
    page.get_by_label("ZIP code").fill("55802")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name=re.compile("Place order")).click()

    expect(page).to_have_url(re.compile(r"/orders/[^/]+/$"))
    address = page.locator("[data-delivery-address]")
    expect(address).to_be_visible()
    assert address.inner_text().splitlines() == ["Ada Angler", "12 Lake Avenue", "Duluth, MN 55802", "United States"]
    assert PlacedOrder.objects.get().region == "MN"


def test_a_wrong_zip_code_is_named_by_the_server_with_the_script_off(demo_shop_url, browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/reels/spinning-reel/")
    page.get_by_role("button", name="Add to basket").click()
    page.goto(f"{demo_shop_url}/checkout/")
    # Without the script every field is there, with labels that fit any country.
    expect(page.get_by_label("State, province or territory")).to_be_visible()
    page.get_by_label("Full name").fill("Ada Angler")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Country").select_option("United States")
    page.get_by_label("Address").fill("12 Lake Avenue")
    page.get_by_label("City or town").fill("Duluth")
    page.get_by_label("State, province or territory").select_option("MN")
    page.get_by_label("Postcode / ZIP").fill("5580")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name=re.compile("Place order")).click()

    expect(page.get_by_text("Enter a valid ZIP code, like 55802 or 55802-1234.")).to_be_visible()
    expect(page.get_by_label("ZIP code")).to_have_value("5580")
    assert not PlacedOrder.objects.exists()
    context.close()


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_a_select_is_as_tall_as_the_text_fields_beside_it(demo_shop_url, browser, viewport):
    """The State select was 4 px shorter than City and ZIP code on its row (and the sale page's
    Quantity than Name beside it): Chromium draws a select's line at the font's height."""

    page = _with_a_reel_in_the_basket(browser, demo_shop_url, viewport, then="/checkout/")

    fields = ("Country", "City", "State", "ZIP code")
    heights = {name: page.get_by_label(name).bounding_box()["height"] for name in fields}
    assert len(set(heights.values())) == 1, heights


@pytest.mark.parametrize("path", ["/shop/", "/checkout/", "/basket/"])
def test_find_an_order_is_in_the_header_on_a_phone(demo_shop_url, browser, path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport=PHONE)
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}{path}")
    link = page.get_by_role("navigation", name="Your account").get_by_role("link", name="Find an order")
    expect(link).to_be_visible()
    box = link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    link.click()
    expect(page).to_have_url(f"{demo_shop_url}/orders/lookup/")


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_the_basket_s_update_button_takes_a_tap_and_nothing_lies_over_it(demo_shop_url, browser, viewport):
    from playwright.sync_api import expect

    page = _with_a_reel_in_the_basket(browser, demo_shop_url, viewport, then="/basket/")

    update = page.get_by_role("button", name="Update")
    box = update.bounding_box()
    centre = [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2]
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).textContent.trim()", centre) == "Update"
    total = page.locator(".basket-line-total").bounding_box()
    form = page.locator(".basket-line-quantity").bounding_box()
    overlap = min(total["x"] + total["width"], form["x"] + form["width"]) - max(total["x"], form["x"])
    assert overlap <= 0 or total["y"] >= form["y"] + form["height"], (total, form)

    page.locator("#qty-spinning-reel").fill("3")
    update.click(timeout=5_000)  # a real click: Playwright waits for the button to take it
    expect(page.locator(".basket-line-total")).to_contain_text("$89.97")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_the_route_preview_shows_no_error_banner(demo_shop_url, browser):
    from playwright.sync_api import expect

    ensure_origins()
    edge_services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    page = _merchant_page(browser, demo_shop_url, LAPTOP)
    page.goto(f"{demo_shop_url}/admin/edge/route/")
    page.get_by_role("link", name="muskie", exact=True).click()
    page.get_by_label("Canary percent").fill("25")
    page.get_by_role("button", name="Preview the change").click()

    expect(page.locator("#edge-preview")).to_contain_text("canary 25%")
    expect(page.locator("#edge-preview")).to_contain_text("Preview only: nothing was saved.")
    expect(page.locator(".errornote")).to_have_count(0)
    expect(page.get_by_text("Please correct the error")).to_have_count(0)
    assert not page.title().startswith("Error")
    assert Route.objects.get(name="muskie").canary_percent is None  # a preview saves nothing


# Where the merchant's pages run past the content's edge on a phone, if anywhere: the fields,
# tables and rows whose right edge is beyond it.
PAST_THE_EDGE = """() => {
  const content = document.getElementById("content");
  const style = getComputedStyle(content);
  const edge = content.getBoundingClientRect().right - parseFloat(style.paddingRight);
  return [...content.querySelectorAll("input, select, textarea, table, .form-row, .flex-container")]
    .filter((el) => el.getBoundingClientRect().width && el.getBoundingClientRect().right > edge + 1)
    .map((el) => el.tagName + (el.id ? "#" + el.id : ""));
}"""


@pytest.mark.parametrize(
    "path",
    [
        "/admin/edge/route/tester/?uri=/shop/rods/muskie-casting-rod/orders",
        "/admin/orders/hotorder/live/",
        "/admin/orders/saleallocation/add/",
    ],
)
def test_the_merchant_s_forms_and_live_view_stay_inside_a_phone_s_width(demo_shop_url, browser, path):
    muskie = Product.objects.get(slug="muskie-casting-rod")
    SaleAllocation.objects.create(product=muskie, is_hot=True, allocated=20, per_order_limit=2)
    page = _merchant_page(browser, demo_shop_url, PHONE)
    page.goto(f"{demo_shop_url}{path}")

    assert page.evaluate(PAST_THE_EDGE) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize(
    "changelist",
    [
        "/admin/orders/hotorder/",
        "/admin/orders/saleallocation/",
        "/admin/orders/deadletter/",
        "/admin/edge/routeaudit/",
    ],
)
def test_change_lists_show_every_column_at_1280_px(demo_shop_url, browser, changelist):
    muskie = Product.objects.get(slug="muskie-casting-rod")
    now = timezone.now()
    SaleAllocation.objects.create(
        product=muskie, allocated=20, per_order_limit=2, starts_at=now, ends_at=now + timedelta(hours=6)
    )
    order = HotOrder.objects.create(
        number="T000001",
        token="t" * 40,
        idempotency_key="k-1",
        fingerprint="f",
        product=muskie,
        quantity=2,
        unit_price_cents=14999,
        customer_name="Ada Angler",
        customer_email="ada.angler.from.duluth@example.com",
        card_last4="4242",
        legacy_number="L00000001",
        reserved_until=now + timedelta(minutes=10),
    )
    DeadLetter.objects.create(order=order, error="legacy API answered 503 (after 9 attempts) " * 3, attempts=9)
    ensure_origins()
    edge_services.route_create(actor="admin:merchant", name="muskie", pattern="/shop/rods/*", origin="hotpath")

    page = _merchant_page(browser, demo_shop_url, LAPTOP)
    page.goto(f"{demo_shop_url}{changelist}")
    results = page.locator("#changelist .results").bounding_box()
    headers = page.locator("#result_list thead th")
    assert headers.count() >= 5
    for i in range(headers.count()):
        box = headers.nth(i).bounding_box()
        assert box["x"] + box["width"] <= results["x"] + results["width"] + 1, (headers.nth(i).inner_text(), box)
    if changelist == "/admin/orders/hotorder/":
        assert page.locator("#result_list td.field-legacy_no").inner_text() == "L00000001"


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 700}, PHONE], ids=["320px", "390px"])
def test_my_orders_stays_inside_a_phone_s_width(demo_shop_url, browser, django_user_model, viewport):
    """Its four columns were 442 px wide: the page scrolled sideways on a phone. A seven-figure
    total ran 20 px past a 320 px screen after that."""
    from shop.models import PlacedOrder

    customer = django_user_model.objects.create_user("ada", "ada@example.com", MERCHANT_PASSWORD)
    for n, total in enumerate([14999, 1234599, 123456789]):
        PlacedOrder.objects.create(
            number=f"L0000001{n}", legacy_id=n + 1, reference=f"ref-{n}", customer=customer, email=customer.email,
            name="Ada Angler", address_line="1 Lake Road", city="Hayward", postcode="54843",
            country="United States", total_cents=total, card_last4="4242", processing_ms=42,
        )  # fmt: skip
    page = _signed_in_page(browser, demo_shop_url, viewport, login="/accounts/login/", username="ada", button="Sign in")
    page.goto(f"{demo_shop_url}/account/orders/")

    assert page.locator("[data-order]").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_a_promise_that_wraps_on_a_phone_lines_up_under_its_first_word(demo_shop_url, browser):
    """On the sale's page at 320 px, "A confirmation email once your order is placed" wrapped
    under its tick instead of under "A"."""
    ensure_origins()
    muskie = Product.objects.get(slug="muskie-casting-rod")
    SaleAllocation.objects.create(product=muskie, is_hot=True, allocated=20, per_order_limit=2)
    edge_services.route_create(
        actor="t", name="muskie-sale", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    page = browser.new_page(viewport={"width": 320, "height": 700})
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/rods/muskie-casting-rod/")

    # Each promise's lines of text, as the left edges of their boxes (the tick is not text).
    lines = page.evaluate(
        """() => [...document.querySelectorAll('.product-promises li')].map(li => {
            const range = document.createRange();
            range.selectNodeContents(li);
            return [...range.getClientRects()].map(box => Math.round(box.left));
        })"""
    )
    assert any(len(lefts) > 1 for lefts in lines), lines  # one wraps at this width
    assert all(len(set(lefts)) == 1 for lefts in lines), lines


def test_the_live_view_s_tiles_are_two_a_row_of_one_width_on_a_phone(demo_shop_url, browser):
    """Wrapped by their content, the eight tiles stood one a row at 390 px, each as wide as its
    label; the live sale dashboard's tiles are a grid, two a row on a phone."""
    page = _merchant_page(browser, demo_shop_url, PHONE)
    page.goto(f"{demo_shop_url}/admin/orders/hotorder/live/")

    tiles = page.locator(".tiles .tile")
    boxes = [tiles.nth(i).bounding_box() for i in range(tiles.count())]
    assert len(boxes) == 8
    assert len({round(box["width"]) for box in boxes}) == 1, boxes
    assert len({round(box["y"]) for box in boxes}) == 4, boxes


def test_a_category_tile_and_a_product_card_show_the_focus_ring_to_the_keyboard(demo_shop_url, browser):
    """The tile's own shadow replaced the ring, and the card's hidden overflow cut the link's off:
    tabbing through the home page showed no focus on either."""
    page = browser.new_page(viewport=LAPTOP)
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/")
    ring = "rgb(29, 127, 191)"  # --focus

    def tab_to(selector: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"never focused {selector}")

    tab_to(".category-tile")
    assert ring in page.evaluate("getComputedStyle(document.activeElement).boxShadow")
    tab_to(".product-card-link")
    # The card's shadow is animated (.15s): wait for it to settle.
    page.wait_for_function(
        "ring => getComputedStyle(document.activeElement.closest('.product-card')).boxShadow.includes(ring)",
        arg=ring,
        timeout=2_000,
    )


@pytest.mark.parametrize("viewport", [{"width": 320, "height": 640}, PHONE, LAPTOP], ids=["320px", "390px", "1280px"])
def test_a_field_reached_backwards_with_the_keyboard_is_not_hidden_under_the_sticky_header(
    demo_shop_url, browser, viewport
):
    """Shift+Tab up the checkout form scrolled each field just into view: under the sticky header
    (150 px tall at 320 px), where the buyer could not see what they were typing into."""

    page = _with_a_reel_in_the_basket(browser, demo_shop_url, viewport, then="/checkout/")
    page.get_by_label("Card number").focus()

    under_the_header = []
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        top, header_bottom, name = page.evaluate(
            """() => [document.activeElement.getBoundingClientRect().top,
                      document.querySelector('.site-header').getBoundingClientRect().bottom,
                      document.activeElement.id]"""
        )
        if top < header_bottom:
            under_the_header.append((name, top, header_bottom))
    assert under_the_header == []


def test_the_service_map_stays_inside_a_320_px_phone(demo_shop_url, browser):
    """Its table of hops ran 17 px past the screen: the page scrolled sideways."""
    from tests.tracing.test_store import one_order_trace

    one_order_trace()
    page = _merchant_page(browser, demo_shop_url, {"width": 320, "height": 700})
    page.goto(f"{demo_shop_url}/admin/tracing/span/map/?window=24h")

    assert page.locator(".svc-table tbody tr").count() > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_choosing_a_sort_order_with_the_keyboard_does_not_leave_the_page_at_each_option(demo_shop_url, browser):
    """Arrow keys change a closed select one option at a time: the page reloads only on "Sort"."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=LAPTOP)
    page.set_default_timeout(20_000)
    page.goto(f"{demo_shop_url}/shop/reels/")
    page.get_by_label("Sort by").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(500)
    expect(page).to_have_url(f"{demo_shop_url}/shop/reels/")
    expect(page.get_by_label("Sort by")).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sort")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/shop/reels/\?sort=\S+$"))


def test_the_home_link_is_named_by_its_words_and_focus_shows_in_forced_colours(demo_shop_url, browser):
    """A voice user says the words they see ("The Fishing Shop, Tackle for every water"); Windows
    high contrast drops box shadows, the focus ring, and keeps outlines."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=LAPTOP)
    page.set_default_timeout(20_000)
    page.emulate_media(forced_colors="active")
    page.goto(f"{demo_shop_url}/shop/")
    home = page.get_by_role("banner").get_by_role(
        "link", name=re.compile(r"^The Fishing Shop\W+Tackle for every water")
    )
    expect(home).to_have_attribute("href", "/shop/")

    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    expect(home).to_be_focused()
    assert home.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
