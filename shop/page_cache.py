"""The catalogue pages' content, rendered once per catalogue version and filled in per request.

A catalogue page (home, category, product) is the same for every shopper but for two things:
who is looking (header, basket, CSRF token: the base template's frame) and the stock (badges,
a sold-out card, the product's buy box). The content is rendered once per catalogue version
(`shop.catalogue_version`, replaced after every write to products, categories and sales, bulk
updates included) with holes where the stock goes, and kept in this process's memory; each
request reads the version (one small cache read) and the stock of the page's products (one
call, `stock_available`, which keeps what it read until the stock stamp moves), and fills
the holes. The frame is rendered for each shopper with a
session; for one without (not signed in, no basket, no message waiting) it is everybody's, so
the whole page is kept too, with a hole for the CSRF token. A price, title or picture changed
shows on the next request, and stock is as fresh as its read.
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

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from readmodels.selectors import ShelfStock, products_shelf_stock
from readmodels.stock_stamp import STAMP_KEY, stock_stamp
from shop import navigation
from shop.catalogue_version import VERSION_KEY, catalogue_version, changed_here
from shop.models import LOW_STOCK
from shop.services import MAX_LINE_QUANTITY

logger = logging.getLogger(__name__)

# A hole is a marker no rendered text can hold (a null character, which neither the
# database nor the forms let in) with a token of this process's own: BADGE, CARD, CARD_BADGE
# or BUY and the product's primary key, or CSRF (the request's token, in a page kept whole).
_TOKEN = secrets.token_hex(4)
_HOLE = re.compile("\x00" + _TOKEN + r":(badge|card_badge|card|buy|csrf):(\d+)\x00")
# Pages kept per process (every sort of every category and every product is about 60).
MAX_PAGES = 512
# A write that bypasses Django (raw SQL, another codebase) replaces no version: a page
# is rendered again after this long all the same. Each kept page gets between three
# quarters of it and all of it, so that pages kept together are not all rendered again in
# the same instant (under load, a burst of renders is a burst of slow page views).
PAGE_TTL_SECONDS = 30.0
# Stock read for a page is kept under the stock stamp, which every logged change of stock
# moves; a change that logs nothing (raw SQL) shows after this long all the same.
STOCK_MAX_AGE_SECONDS = 2.0
# Sets of products whose stock is kept per process (one per page, as pages).
MAX_STOCK_READS = MAX_PAGES


def hole(kind: str, product_id: int) -> SafeString:
    """Where a product's stock goes in cached content: `badge`, `card` (the card's class),
    `card_badge` (the card's badge, which says so while the product is on a flash sale) or
    `buy` (the product page's buy box)."""
    return mark_safe(f"\x00{_TOKEN}:{kind}:{int(product_id)}\x00")  # noqa: S308 - a marker: a word and a number


_stock_reads: OrderedDict[tuple, tuple[float, dict[int, ShelfStock]]] = OrderedDict()


def stock_available(product_ids: Iterable[int], *, stamp: str | None | bool = False) -> dict[int, ShelfStock]:
    """Units an ordinary shopper may buy of each product (on hand less what holds keep), and
    the units left in its flash sale while one is open: the one read of stock a cached
    catalogue page makes, for every badge, card and buy box on it: the inventory view's, fed
    by the log (the catalogue's own for a product it has not seen).

    What the database gave is kept in this process under the stock stamp (one small cache
    read), so while nothing is sold or restocked a page view reads no database: the stamp
    is read before the database, so a change committed in between is read again under the
    stamp it moves to. `stamp`: the stamp this request read already (`reading()`; None: it
    could not be read), else it is read here."""
    ids = frozenset(product_ids)
    if stamp is False:
        stamp = stock_stamp()
    if stamp is None:
        return products_shelf_stock(ids)
    key = (stamp, ids)
    now = time.monotonic()
    with _lock:
        kept = _stock_reads.get(key)
        if kept is not None and now - kept[0] <= STOCK_MAX_AGE_SECONDS:
            _stock_reads.move_to_end(key)
            return kept[1]
    available = products_shelf_stock(ids)
    with _lock:
        _stock_reads[key] = (now, available)
        _stock_reads.move_to_end(key)
        while len(_stock_reads) > MAX_STOCK_READS:
            _stock_reads.popitem(last=False)
    return available


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


def _card_sale_state(stock: ShelfStock) -> str | None:
    """What a product card says of the product's flash sale, as the sale's page says it:
    flash_sale, sold_out, sale_not_started or sale_ended; None outside a sale. Told from the
    window at each fill, so a kept page's card changes as the window opens or ends."""
    if stock.sale_remaining is None:
        return None
    window = stock.sale_window()
    if window != "open":
        return f"sale_{window}"
    return "flash_sale" if stock.sale_remaining > 0 else "sold_out"


def card_badge_html(stock: ShelfStock) -> SafeString:
    """A product card's badge: the stock badge, or while the product is on a flash sale (its
    page is then the sale's, which shows the sale's own stock) "Flash sale", "Sold out" once
    the sale has nothing left, "Coming soon" before its window opens and "Sale ended" after."""
    state = _card_sale_state(stock)
    if state is None:
        return badge_html(stock.available)
    html = _badges.get(("sale", state))
    if html is None:
        html = _badges["sale", state] = render_to_string("shop/_stock_badge.html", {"state": state})
    return html


def card_class(stock: ShelfStock) -> str:
    """The product card's extra class: ` is-sold-out` when nothing is left to buy (in the
    flash sale while one is open)."""
    left = stock.available if stock.sale_remaining is None else stock.sale_remaining
    return " is-sold-out" if left <= 0 else ""


@dataclass
class Content:
    """A page's content with its holes: text and (kind, product id) in turn."""

    parts: list[str | tuple[str, int]]
    product_ids: frozenset[int]
    # What the page's frame needs besides (the category for the navigation, the title).
    extra: dict = field(default_factory=dict)
    made: float = field(default_factory=time.monotonic)
    ttl: float = field(default_factory=lambda: PAGE_TTL_SECONDS * (750 + secrets.randbelow(251)) / 1000)
    html: str = ""  # as rendered, holes and all
    filed: tuple | None = None  # the version it is kept under (None: not kept)
    renewing: bool = False  # past its time, and a request renders it again once answered
    renewed_as: Content | None = None  # what rendering it again gave (for the pages built on it)


def content_parse(html: str, extra: dict | None = None) -> Content:
    parts: list[str | tuple[str, int]] = []
    ids = set()
    last = 0
    for match in _HOLE.finditer(html):
        parts.append(html[last : match.start()])
        kind, pk = match.group(1), int(match.group(2))
        parts.append((kind, pk))
        if kind != "csrf":
            ids.add(pk)
        last = match.end()
    parts.append(html[last:])
    return Content(parts=parts, product_ids=frozenset(ids), extra=extra or {}, html=html)


_pages: OrderedDict[tuple, Content] = OrderedDict()
_lock = threading.Lock()
# What this thread renders again once its response is sent (see `_renew_after_response`).
_after_response = threading.local()


def _page_get(key: tuple) -> tuple[Content | None, bool]:
    """The content kept under `key` and whether this request is to render it again: past its
    time, it is served once more while the first request to see that renders it again after
    answering (`_renew_after_response`), so no shopper waits for the render. Past twice its
    time (nobody viewed it meanwhile) it is dropped and rendered while the shopper waits."""
    with _lock:
        content = _pages.get(key)
        if content is None:
            return None, False
        age = time.monotonic() - content.made
        if age > content.ttl + PAGE_TTL_SECONDS:
            del _pages[key]
            return None, False
        _pages.move_to_end(key)
        if age <= content.ttl or content.renewing:
            return content, False
        content.renewing = True
        return content, True


def _renew_after_response(renew: Callable[[], None]) -> None:
    pending = getattr(_after_response, "renewals", None)
    if pending is None:
        pending = _after_response.renewals = []
    pending.append(renew)


def renewals_run(**_kwargs) -> None:
    """Renders again the pages this thread served past their time (Django's request_finished,
    sent once the response's last byte is written): the shopper has the page already."""
    pending = getattr(_after_response, "renewals", None)
    while pending:
        renew = pending.pop(0)  # in order: a page's content before the page built on it
        try:
            renew()
        except Exception:
            logger.warning("a kept page could not be rendered again; it is dropped", exc_info=True)


def _page_put(key: tuple, content: Content) -> None:
    with _lock:
        _pages[key] = content
        while len(_pages) > MAX_PAGES:
            _pages.popitem(last=False)


def pages_forget() -> None:
    """Drops every page and stock read this process keeps (tests)."""
    with _lock:
        _pages.clear()
        _stock_reads.clear()
    _after_response.renewals = []


def _version_now() -> tuple | None:
    try:
        version = catalogue_version()
    except Exception:
        logger.warning("no catalogue version: the page is rendered without its cache", exc_info=True)
        return None
    # This process's own changes count at once, before the version is replaced at their commit.
    return (version, changed_here())


@dataclass(frozen=True)
class Reading:
    """What a catalogue page reads from the cache before anything else: the catalogue's
    version (None: unreadable, nothing is kept) and the stock stamp (None: stock is read
    afresh)."""

    version: tuple | None
    stamp: str | None


def reading() -> Reading:
    """The catalogue's version and the stock stamp, in one cache round trip (either is made
    on its first use)."""
    try:
        found = cache.get_many([VERSION_KEY, STAMP_KEY])
    except Exception:
        logger.warning("no catalogue version: the page is rendered without its cache", exc_info=True)
        return Reading(version=None, stamp=None)
    version = found.get(VERSION_KEY)
    version = (version, changed_here()) if version is not None else _version_now()
    return Reading(version=version, stamp=found.get(STAMP_KEY) or stock_stamp())


def catalogue_content(
    key: tuple, build: Callable[[], tuple[str, dict]], *, under: tuple | None | bool = False
) -> Content:
    """The content filed under `key` for the current catalogue version (or the version
    `under`, already read for this request), built (`build()` gives the HTML with holes and
    the frame's extras) when this process has none. Without a readable version (the cache
    is away) it is built for this request alone."""
    version = _version_now() if under is False else under
    if version is not None:
        content, renew = _page_get((*version, *key))
        if renew:
            _renew_after_response(lambda: _content_build((*version, *key), build, version, stale=content))
        if content is not None:
            return content
    return _content_build((*version, *key) if version is not None else None, build, version)


def _content_build(
    filed_as: tuple | None, build: Callable[[], tuple[str, dict]], version: tuple | None, *, stale=None
) -> Content:
    try:
        html, extra = build()
        # The header's categories, filed with the page (the same version covers them).
        content = content_parse(html, {"nav_categories": navigation.nav_categories(), **extra})
    except Exception:
        if stale is not None:  # rendering again failed: the next view renders it itself
            with _lock:
                if _pages.get(filed_as) is stale:
                    del _pages[filed_as]
        raise
    if stale is not None:
        stale.renewed_as = content
    if filed_as is not None:
        content.filed = version
        _page_put(filed_as, content)
    return content


def frame_shared(request: HttpRequest) -> bool:
    """Whether this request's frame is every shopper's: no session (so not signed in, no
    basket) and no messages waiting."""
    cookies = request.COOKIES
    return not cookies.get(settings.SESSION_COOKIE_NAME) and not cookies.get(CookieStorage.cookie_name)


def catalogue_page(request: HttpRequest, template: str, content: Content, read: Reading | None = None) -> HttpResponse:
    """The page: `content` filled in, in `template`'s frame. For a shopper without a session
    the frame is everybody's but for the CSRF token, so the whole page is kept as well and
    only its holes are filled; anybody else's frame is rendered for them. `read`: what this
    request read with the content (else the stock stamp is read again)."""
    stamp = read.stamp if read is not None else False
    if not frame_shared(request) or content.filed is None:
        filled = content_fill(content, request, stamp=stamp)
        return render(request, template, {**content.extra, "content": filled})

    def build() -> tuple[str, dict]:
        # Rendered again after the answer, the page takes its content as rendered again too.
        source = content.renewed_as or content
        holes = mark_safe(source.html)  # noqa: S308 - rendered (and escaped) by the templates
        context = {**source.extra, "content": holes, "csrf_token": hole("csrf", 0)}
        return render_to_string(template, context, request=request), source.extra

    page = catalogue_content(("page", template, request.get_full_path()), build, under=content.filed)
    return HttpResponse(content_fill(page, request, stamp=stamp))


_NO_STOCK = ShelfStock(available=0)


def content_fill(content: Content, request: HttpRequest, *, stamp: str | None | bool = False) -> SafeString:
    """The content with this moment's stock in its holes; the buy box carries this
    request's CSRF token."""
    available = stock_available(content.product_ids, stamp=stamp)
    out = []
    for part in content.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        kind, pk = part
        stock = available.get(pk, _NO_STOCK)
        units = stock.available
        if kind == "csrf":
            out.append(get_token(request))
        elif kind == "badge":
            out.append(badge_html(units))
        elif kind == "card_badge":
            out.append(card_badge_html(stock))
        elif kind == "card":
            out.append(card_class(stock))
        else:
            slug = content.extra.get("slugs", {}).get(pk, "")
            out.append(buy_box_html(request, product_slug=slug, available=units))
    return mark_safe("".join(out))  # noqa: S308 - every part was rendered (and escaped) by the templates


def buy_box_html(request: HttpRequest | None, *, product_slug: str, available: int) -> SafeString:
    """The product page's form to add it to the basket, or its sold-out note."""
    context = {"product_slug": product_slug, "available": available, "max_quantity": min(available, MAX_LINE_QUANTITY)}
    return render_to_string("shop/_buy_box.html", context, request=request)
