"""What the sale page's browser tests share: a buyer filling the form and tapping the button,
and the network losing an order's answer on its way back to the phone."""

from __future__ import annotations

from orders.models import HotOrder
from tests.orders.conftest import APPROVED_CARD, PREFIX


def sale_page_buy(page, quantity: int | None = None) -> None:
    """Fills the form as a buyer does (the quantity left as shown unless given) and taps the button."""
    if quantity is not None:
        page.select_option("#quantity", str(quantity))
    page.fill("#name", "Ann Angler")
    page.fill("#email", "ann@example.com")
    page.fill("#card", APPROVED_CARD)
    page.click("#buy-button")


def answer_lost_once(page, *, gateway_timeout: bool = False) -> None:
    """The first order reaches the server, which accepts it; its answer never reaches the page:
    the connection drops, or a gateway on the way answers 504 instead."""
    lost = []

    def lose_first_answer(route):
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch())  # the server accepts the order; the phone never hears
            if gateway_timeout:
                route.fulfill(status=504, content_type="text/html", body="<h1>504 Gateway Time-out</h1>")
            else:
                route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/orders", lose_first_answer)


def sale_page_answer_lost(processes, process_env, browser, *, gateway_timeout: bool = False):
    """A buyer's sale page, served by the hot path, whose first order the server accepted and
    whose answer never reached the page: (the hot path's URL, the page, that order)."""
    from playwright.sync_api import expect

    hotpath = processes.granian("config.wsgi_hotpath", process_env)
    page = browser.new_page()
    answer_lost_once(page, gateway_timeout=gateway_timeout)
    page.goto(hotpath + PREFIX)
    sale_page_buy(page)
    expect(page.locator("#buy-button")).to_contain_text("try again")
    return hotpath, page, HotOrder.objects.get()
