"""One trace's waterfall in a real Chromium, under the pages' Content-Security-Policy (no style
attribute applies): each span indented under its parent and its bar drawn where and as long as
it ran, at a phone's and a laptop's width. The browser fixture fails a page the policy refused."""

from __future__ import annotations

import pytest

from tests.shop.test_pages_browser import LAPTOP, PHONE, _merchant_page
from tests.tracing.test_store import one_order_trace
from tracing import selectors

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1280px"])
def test_a_trace_s_waterfall_indents_each_span_and_draws_its_bar_where_it_ran(demo_shop_url, browser, viewport):
    trace_id = one_order_trace()
    rows = selectors.trace_get(trace_id).rows
    page = _merchant_page(browser, demo_shop_url, viewport)

    page.goto(f"{demo_shop_url}/admin/tracing/span/trace/?id={trace_id}")

    labels = page.locator(".waterfall tbody td.label")
    bars = page.locator(".waterfall tbody rect.bar")
    assert labels.count() == bars.count() == len(rows) > 3
    tracks = page.locator(".waterfall tbody svg.track")
    for i, row in enumerate(rows):
        track, bar = tracks.nth(i).bounding_box(), bars.nth(i).bounding_box()
        assert bar["width"] >= 1 and bar["height"] == pytest.approx(12, abs=1)
        assert bar["x"] - track["x"] == pytest.approx(track["width"] * row.left_pct / 100, abs=2)
        assert bar["width"] == pytest.approx(track["width"] * row.width_pct / 100, abs=2)
    # A span's name starts further in than its parent's, by its depth.
    chips = page.locator(".waterfall tbody td.label .svc")
    deepest = max(range(len(rows)), key=lambda i: rows[i].depth)
    assert rows[deepest].depth >= 2
    assert chips.nth(deepest).bounding_box()["x"] > chips.nth(0).bounding_box()["x"] + 2 * rows[deepest].depth
