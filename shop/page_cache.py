"""The catalogue pages' content, rendered once per catalogue version and filled in per request.

A catalogue page (home, category, product) is the same for every shopper but for two things:
who is looking (header, basket, CSRF token: the base template, rendered for each request as
before) and the stock (badges, a sold-out card, the product's buy box). The content is
rendered once per catalogue version (`shop.catalogue_version`, replaced after every write to
products, categories and sales, bulk updates included) with holes where the stock goes, and
kept in this process's memory; each request reads the version (one small cache read) and the
stock of the page's products (one call, `stock_available`), and fills the holes. A price,
title or picture changed shows on the next request, and stock is as fresh as the database.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from readmodels.selectors import products_available
from shop import navigation
from shop.catalogue_version import catalogue_version, changed_here
from shop.models import LOW_STOCK
from shop.services import MAX_LINE_QUANTITY

logger = logging.getLogger(__name__)

# A hole is a marker no rendered text can hold (a null character, which neither the
# database nor the forms let in) with a token of this process's own: BADGE, CARD or BUY, and
# the product's primary key.
_TOKEN = secrets.token_hex(4)
_HOLE = re.compile("\x00" + _TOKEN + r":(badge|card|buy):(\d+)\x00")
# Pages kept per process (every sort of every category and every product is about 60).
MAX_PAGES = 512
# A write that bypasses Django (raw SQL, another codebase) replaces no version: a page
# is rendered again after this long all the same.
PAGE_TTL_SECONDS = 30.0


def hole(kind: str, product_id: int) -> SafeString:
    """Where a product's stock goes in cached content: `badge`, `card` (the card's class)
    or `buy` (the product page's buy box)."""
    return mark_safe(f"\x00{_TOKEN}:{kind}:{int(product_id)}\x00")  # noqa: S308 - a marker: a word and a number


def stock_available(product_ids: Iterable[int]) -> dict[int, int]:
    """Units an ordinary shopper may buy of each product (on hand less what holds keep): the
    one read of stock a cached catalogue page makes, for every badge and buy box on it: the
    inventory view's, fed by the log (the catalogue's own for a product it has not seen)."""
    return products_available(product_ids)


def stock_state(available: int) -> str:
    """sold_out, low or in_stock (as Product.stock_state)."""
    if available <= 0:
        return "sold_out"
    return "low" if available <= LOW_STOCK else "in_stock"


_badges: dict[tuple[str, int], SafeString] = {}


def badge_html(available: int) -> SafeString:
    """The stock badge for this many units (the template rendered once per state and count)."""
    state = stock_state(available)
    key = (state, available if state == "low" else 0)
    html = _badges.get(key)
    if html is None:
        context = {"state": state, "stock": available, "low_stock": LOW_STOCK}
        html = _badges[key] = render_to_string("shop/_stock_badge.html", context)
    return html


@dataclass
class Content:
    """A page's content with its holes: text and (kind, product id) in turn."""

    parts: list[str | tuple[str, int]]
    product_ids: frozenset[int]
    # What the page's frame needs besides (the category for the navigation, the title).
    extra: dict = field(default_factory=dict)
    made: float = field(default_factory=time.monotonic)


def content_parse(html: str, extra: dict | None = None) -> Content:
    parts: list[str | tuple[str, int]] = []
    ids = set()
    last = 0
    for match in _HOLE.finditer(html):
        parts.append(html[last : match.start()])
        kind, pk = match.group(1), int(match.group(2))
        parts.append((kind, pk))
        ids.add(pk)
        last = match.end()
    parts.append(html[last:])
    return Content(parts=parts, product_ids=frozenset(ids), extra=extra or {})


_pages: OrderedDict[tuple, Content] = OrderedDict()
_lock = threading.Lock()


def _page_get(key: tuple) -> Content | None:
    with _lock:
        content = _pages.get(key)
        if content is None:
            return None
        if time.monotonic() - content.made > PAGE_TTL_SECONDS:
            del _pages[key]
            return None
        _pages.move_to_end(key)
        return content


def _page_put(key: tuple, content: Content) -> None:
    with _lock:
        _pages[key] = content
        while len(_pages) > MAX_PAGES:
            _pages.popitem(last=False)


def pages_forget() -> None:
    """Drops every page this process keeps (tests)."""
    with _lock:
        _pages.clear()


def catalogue_content(key: tuple, build: Callable[[], tuple[str, dict]]) -> Content:
    """The content filed under `key` for the current catalogue version, built (`build()`
    gives the HTML with holes and the frame's extras) when this process has none. Without a
    readable version (the cache is away) it is built for this request alone."""
    try:
        version = catalogue_version()
    except Exception:
        logger.warning("no catalogue version: the page is rendered without its cache", exc_info=True)
        version = None
    # This process's own changes count at once, before the version is replaced at their commit.
    filed = (version, changed_here(), *key)
    if version is not None:
        content = _page_get(filed)
        if content is not None:
            return content
    html, extra = build()
    # The header's categories, filed with the page (the same version covers them).
    content = content_parse(html, {"nav_categories": navigation.nav_categories(), **extra})
    if version is not None:
        _page_put(filed, content)
    return content


def content_fill(content: Content, request: HttpRequest) -> SafeString:
    """The content with this moment's stock in its holes; the buy box carries this
    request's CSRF token."""
    available = stock_available(content.product_ids)
    out = []
    for part in content.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        kind, pk = part
        units = available.get(pk, 0)
        if kind == "badge":
            out.append(badge_html(units))
        elif kind == "card":
            out.append(" is-sold-out" if units <= 0 else "")
        else:
            slug = content.extra.get("slugs", {}).get(pk, "")
            out.append(buy_box_html(request, product_slug=slug, available=units))
    return mark_safe("".join(out))  # noqa: S308 - every part was rendered (and escaped) by the templates


def buy_box_html(request: HttpRequest | None, *, product_slug: str, available: int) -> SafeString:
    """The product page's form to add it to the basket, or its sold-out note."""
    context = {"product_slug": product_slug, "available": available, "max_quantity": min(available, MAX_LINE_QUANTITY)}
    return render_to_string("shop/_buy_box.html", context, request=request)
