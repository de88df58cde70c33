"""The storefront's pages: catalogue, basket, checkout, order pages and sign-up.

Views only orchestrate: reads come from selectors, writes from services.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.validators import slug_re
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from shop import accounts, checkout_progress, lookup_throttle, order_links, page_cache, selectors, services
from shop.forms import BasketQuantityForm, OrderLookupForm, QuantityForm, SignUpForm
from shop.models import Product
from shop.order_finders import FoundOrder, GuestOrderFinder, OrderFinder, placed_order_for_link, placed_order_match
from shop.order_input import client_ip


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- Catalogue --------------------------------------------------------------------------
# The content of a catalogue page is the same for every shopper: it is rendered once per
# catalogue version (read with the stock stamp, in one round trip), and each request fills
# in the stock and renders the page's frame (header, basket, CSRF token) around it; for a
# shopper without a session the frame is kept too, and only the CSRF token is filled in
# (shop.page_cache).


def _catalogue_page(
    request: HttpRequest, template: str, content: page_cache.Content, read: page_cache.Reading
) -> HttpResponse:
    return page_cache.catalogue_page(request, template, content, read)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    def build() -> tuple[str, dict]:
        context = {
            "categories": selectors.category_list_for_nav(),
            "featured": selectors.product_list_featured(limit=8),
            "stock_holes": True,
        }
        return render_to_string("shop/_home_content.html", context), {}

    read = page_cache.reading()
    content = page_cache.catalogue_content(("home",), build, under=read.version)
    return _catalogue_page(request, "shop/home.html", content, read)


# How long after its placing an order's page is the checkout's receipt, with its thanks.
JUST_PLACED = timedelta(minutes=15)
SORTS = [("", "Featured"), ("price", "Price: low to high"), ("-price", "Price: high to low"), ("title", "Name")]


@require_safe
def category(request: HttpRequest, category: str) -> HttpResponse:
    sort = request.GET.get("sort", "")
    sort = sort if sort in dict(SORTS) else ""

    def build() -> tuple[str, dict]:
        category_obj = selectors.category_get(slug=category)
        context = {
            "category": category_obj,
            "products": selectors.product_list(category=category_obj, sort=sort),
            "sorts": SORTS,
            "sort": sort,
            "stock_holes": True,
        }
        return render_to_string("shop/_category_content.html", context), {"category": category_obj}

    read = page_cache.reading()
    content = page_cache.catalogue_content(("category", category, sort), build, under=read.version)
    return _catalogue_page(request, "shop/category.html", content, read)


@require_safe
def product(request: HttpRequest, category: str, product: str) -> HttpResponse:
    def build() -> tuple[str, dict]:
        product_obj = selectors.product_get_on_sale(category_slug=category, product_slug=product)
        related = selectors.product_list(category=product_obj.category).exclude(pk=product_obj.pk)[:4]
        context = {"product": product_obj, "category": product_obj.category, "related": related, "stock_holes": True}
        extra = {
            "category": product_obj.category,
            "title": product_obj.title,
            "description": Truncator(product_obj.description).words(30, truncate=" …"),
            "slugs": {product_obj.pk: product_obj.slug},
        }
        return render_to_string("shop/_product_content.html", context), extra

    read = page_cache.reading()
    content = page_cache.catalogue_content(("product", category, product), build, under=read.version)
    return _catalogue_page(request, "shop/product.html", content, read)


# --- Basket -----------------------------------------------------------------------------


@never_cache
@require_safe
def basket(request: HttpRequest) -> HttpResponse:
    view = selectors.basket_view(basket=selectors.basket_get_for_request(request))
    # Emptied by an order whose answer the buyer may never have seen (lost on a bad network):
    # "empty" alone reads as nothing ordered, and sends them to order and pay again.
    just_placed = None if view.lines else checkout_progress.checkout_emptied_by(request)
    context = {"basket": view, "max_quantity": services.MAX_LINE_QUANTITY, "just_placed": just_placed}
    return render(request, "shop/basket.html", context)


@require_POST
def basket_add(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("product", "")
    # The slug's own form before any query, as the basket's API checks it: PostgreSQL refuses
    # a null character in one (a 500), and what is no slug names no product.
    if not slug_re.match(slug):
        raise Http404("No such product.")
    product_obj = get_object_or_404(Product.objects.on_sale(), slug=slug)
    back = _safe_next(request, product_obj.get_absolute_url())
    form = QuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Choose a quantity between 1 and {services.MAX_LINE_QUANTITY}.")
        return redirect(back)
    try:
        with transaction.atomic():
            basket_obj = services.basket_get_or_create_for_request(request)
            services.basket_add(basket=basket_obj, product=product_obj, quantity=form.cleaned_data["quantity"])
    except services.BasketError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    services.basket_remember(request, basket_obj)
    messages.success(request, f"Added {form.cleaned_data['quantity']} × {product_obj.title} to your basket.")
    return redirect("shop:basket")


@require_POST
def basket_line_update(request: HttpRequest, product: str) -> HttpResponse:
    basket_obj = selectors.basket_get_for_request(request)
    product_obj = get_object_or_404(Product, slug=product)
    form = BasketQuantityForm(request.POST)
    if basket_obj is None or not basket_obj.lines.filter(product=product_obj).exists():
        messages.error(request, "That product is not in your basket.")
    elif not form.is_valid():
        messages.error(request, f"Choose a quantity between 0 and {services.MAX_LINE_QUANTITY}.")
    else:
        try:
            services.basket_set_quantity(basket=basket_obj, product=product_obj, quantity=form.cleaned_data["quantity"])
        except services.BasketError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Updated {product_obj.title}.")
    return redirect("shop:basket")


@require_POST
def basket_line_remove(request: HttpRequest, product: str) -> HttpResponse:
    basket_obj = selectors.basket_get_for_request(request)
    product_obj = get_object_or_404(Product, slug=product)
    try:
        if basket_obj is not None and services.basket_remove(basket=basket_obj, product=product_obj):
            messages.success(request, f"Removed {product_obj.title} from your basket.")
    except services.BasketError as exc:
        messages.error(request, str(exc))
    return redirect("shop:basket")


# --- Orders -----------------------------------------------------------------------------


@never_cache
@require_safe
def order(request: HttpRequest, number: str, finders: Sequence[OrderFinder] = ()) -> HttpResponse:
    """A storefront order for its owner or a session granted it; a sale order (found by the
    finders the deployment gives) for a session a signed link granted it. With `?access=`,
    the link itself: it grants, then sends to the plain URL, so the token does not stay in
    the address bar to be copied on."""
    if "access" in request.GET:
        return _order_link_open(request, number=number, finders=finders)
    access = order_links.sale_order_access_for_session(request, number=number)
    if access is not None:
        for finder in finders:
            found = finder.find_granted(number=access.number, email=access.email)
            if found is not None:
                return render(request, "shop/sale_order.html", {"found": found})
    order_obj = selectors.placed_order_get_for_request(request=request, number=number)
    details = selectors.placed_order_details(order=order_obj)
    context = {
        "order": order_obj,
        "details": details,
        "confirmation": selectors.placed_order_confirmation_state(order=order_obj),
        # The thanks and the order system's timing belong to the page seen after the checkout,
        # not to the same order looked up days later.
        "just_placed": order_obj.placed_at >= timezone.now() - JUST_PLACED,
    }
    return render(request, "shop/order.html", context)


def _order_link_open(request: HttpRequest, *, number: str, finders: Sequence[OrderFinder]) -> HttpResponse:
    try:
        access = order_links.order_access_check(token=request.GET["access"], number=number)
    except order_links.LinkRefused as exc:
        context = {"reason": exc.reason, "message": exc.message}
        return render(request, "shop/order_link_refused.html", context, status=403)
    placed = placed_order_for_link(number=access.number, email=access.email)
    if placed is not None:
        order_links.order_grant_access(request, placed)
        return redirect("shop:order", number=placed.number)
    for finder in finders:
        found = finder.find_granted(number=access.number, email=access.email)
        if found is not None:
            order_links.sale_order_grant_access(request, access)
            return redirect("shop:order", number=found.number)
    raise Http404("No such order.")


def _too_many_lookups(request: HttpRequest, form: OrderLookupForm, wait: int, reason: str) -> HttpResponse:
    response = render(request, "shop/order_lookup.html", {"form": form, "throttled": reason}, status=429)
    response["Retry-After"] = str(wait)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def order_lookup(request: HttpRequest, finders: Sequence[OrderFinder] = ()) -> HttpResponse:
    """By number, email and the card's last four digits: the storefront's own orders open
    their page; the sale's orders (found by the finders the deployment gives) show their
    status here."""
    if request.method == "GET":
        # Confirmation emails sent before the signed links link here with both filled in.
        initial = {k: request.GET[k][:254] for k in ("number", "email") if request.GET.get(k)}
        return render(request, "shop/order_lookup.html", {"form": OrderLookupForm(initial=initial)})
    form = OrderLookupForm(request.POST)
    wait = lookup_throttle.lookup_address_throttle(address=client_ip(request) or "")
    if wait is not None:
        return _too_many_lookups(request, form, wait, "address")
    if not form.is_valid():
        return render(request, "shop/order_lookup.html", {"form": form}, status=400)
    number, email, card_last4 = (form.cleaned_data[k] for k in ("number", "email", "card_last4"))
    # One budget of tries per order, whichever of its numbers is typed (a sale order's T- or
    # L-number); a number no order has is counted as typed.
    counted = next(filter(None, (finder.own_number(number=number) for finder in finders)), number)
    wait = lookup_throttle.lookup_number_throttle(number=counted)
    if wait is not None:
        return _too_many_lookups(request, form, wait, "number")
    found = placed_order_match(number=number, email=email, card_last4=card_last4)
    if found is not None:
        lookup_throttle.lookup_number_succeeded(number=counted)
        order_links.order_grant_access(request, found)
        return redirect("shop:order", number=found.number)
    for finder in finders:
        sale_order = finder.find(number=number, email=email, card_last4=card_last4)
        if sale_order is not None:
            lookup_throttle.lookup_number_succeeded(number=counted)
            return render(request, "shop/order_lookup.html", {"form": form, "found": sale_order})
    # One answer whichever part was wrong: nothing to learn by guessing one at a time.
    return render(request, "shop/order_lookup.html", {"form": form, "not_found": True}, status=404)


# My orders shows this many a page.
ORDERS_PAGE_SIZE = 50


@never_cache
@login_required
@require_safe
def account_orders(request: HttpRequest, finders: Sequence[OrderFinder] = ()) -> HttpResponse:
    """The customer's orders, newest first and a page at a time: those placed signed in, and,
    once the account's email is verified, those found by that email (the sale's, and the shop's
    placed signed out). The orders placed signed in are read only as far as the page reaches."""
    own = selectors.placed_order_list_for_customer(user=request.user)
    verified = accounts.email_is_verified(user=request.user)
    found: list[FoundOrder] = []
    if verified:
        for finder in (GuestOrderFinder(), *finders):
            found += finder.for_email(email=request.user.email)
    pages = max(1, -(-(own.count() + len(found)) // ORDERS_PAGE_SIZE))
    page = min(_page_number(request), pages)
    end = page * ORDERS_PAGE_SIZE
    rows = [
        FoundOrder(
            number=order.number,
            status="complete",
            detail="",
            title="",
            quantity=0,
            total_cents=order.total_cents,
            placed_at=order.placed_at,
            url=reverse("shop:order", kwargs={"number": order.number}),
        )
        for order in own[:end]
    ]
    rows = sorted(rows + found, key=lambda row: (row.placed_at, row.number), reverse=True)[end - ORDERS_PAGE_SIZE : end]
    context = {"orders": rows, "email_verified": verified, "page": page, "pages": pages}
    return render(request, "shop/account_orders.html", context)


def _page_number(request: HttpRequest) -> int:
    """The page asked for by `?page=`: 1 when it names none that can be."""
    value = request.GET.get("page", "")
    return int(value) if value.isascii() and value.isdigit() and 0 < len(value) < 7 and int(value) > 0 else 1


# --- Accounts ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("shop:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
        try:
            sent = accounts.email_verification_send(user=user)
        except accounts.LinksThrottled:
            messages.info(
                request,
                f"We did not send a link to {user.email}: several went to that address in the last hour. "
                "Send it again below later, once you can check that inbox.",
            )
            return redirect("shop:account")
        if not sent:
            messages.error(request, "We could not send the link to confirm your email. Send it again below.")
            return redirect("shop:account")
        messages.info(request, f"We sent a link to {user.email}: open it to confirm your address.")
        return redirect(_safe_next(request, reverse("shop:home")))
    return render(request, "shop/accounts/signup.html", {"form": form, "next": request.GET.get("next", "")})


def root(request: HttpRequest) -> HttpResponse:
    return redirect("shop:home")
