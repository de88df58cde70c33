"""The storefront's checkout pages: the form that places the basket's order, and the page that
waits on a checkout sent twice (shop.checkouts says what each answer means)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.messages import get_messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from config.sessions import answer_if_session_interrupted, shown_as_is_if_session_interrupted
from shop import checkout_errors, checkout_progress, checkout_reference, checkouts, order_links, selectors
from shop.decline_throttle import DeclinesThrottled, decline_try
from shop.forms import CheckoutForm
from shop.models import PlacedOrder
from shop.order_input import client_ip


def _checkout_initial(request: HttpRequest) -> dict:
    user = request.user
    if user.is_authenticated:
        return {"name": user.get_full_name(), "email": user.email}
    return {}


@never_cache
@require_http_methods(["GET", "POST"])
# Signed in or out in another tab meanwhile: the outcome is shown all the same (a placed order
# as _to_order says).
@shown_as_is_if_session_interrupted
def checkout(request: HttpRequest) -> HttpResponse:
    basket_obj = selectors.basket_get_for_request(request)
    view = selectors.basket_view(basket=basket_obj)
    if basket_obj is None or not view.lines:
        placed = checkout_progress.checkout_placed_earlier(request)
        if placed is not None:
            checkout_reference.checkout_reference_forget(request)
            order_links.order_grant_access(request, placed)
            messages.info(request, "Your earlier try went through after all: this is your order, charged once.")
            return redirect("shop:order", number=placed.number)
        # A submit from another tab's page, or the buyer back at the checkout after its answer was
        # lost on the way (a dropped mobile network): the basket is empty because it was ordered.
        just_placed = checkout_progress.checkout_emptied_by(request)
        if just_placed is not None:
            messages.info(
                request, f"Your order {just_placed.number} was placed a moment ago: this is it, charged once."
            )
            return redirect("shop:order", number=just_placed.number)
        if request.method == "POST" and request.POST.get("basket_shown") and basket_obj is None:
            # The page showed a basket this browser no longer has at all: signed out in another tab
            # (which keeps the CSRF token, so the form is taken), or its session ended.
            messages.info(request, BASKET_SHOWN_SIGNED_OUT)
            return redirect("shop:basket")
        messages.info(request, "Your basket is empty: add something before checking out.")
        return redirect("shop:basket")
    if request.method == "GET":
        # Minted before the first submit, so two quick submits carry the same reference.
        checkout_reference.checkout_reference(request)
        # Its form would carry the CSRF token of a session another tab ended meanwhile: asked again.
        answer_if_session_interrupted(request, lambda: redirect("shop:checkout"))
        form = CheckoutForm(initial=_checkout_initial(request))
        return render(request, "shop/checkout.html", {"form": form, "basket": view})
    return _checkout_submit(request, basket_obj=basket_obj, view=view)


def _to_order(request: HttpRequest, order: PlacedOrder, message: str = "") -> HttpResponse:
    order_links.order_grant_access(request, order)
    if message:
        messages.info(request, message)
    # Should another tab have signed in or out meanwhile, the grant is lost with the session it
    # was written to, as it should be (signing in or out ends what the browser was shown): this
    # answer, to the request that sent the card, says the order is placed and where to find it.
    answer_if_session_interrupted(
        request, lambda: render(request, "shop/checkout_placed_elsewhere.html", {"order": order})
    )
    return redirect("shop:order", number=order.number)


BASKET_NOT_ORDERABLE = (
    "Something in your basket cannot be ordered as it is: please remove it and try again, or contact us."
)
# Not "nothing was ordered": a reload of the page that told a placed order, after a sign-out in
# another tab, sends its form again and comes here.
BASKET_SHOWN_SIGNED_OUT = (
    "This submit placed no order: the basket your checkout page showed is no longer on this browser "
    "(signed out in another tab, or your session ended). Sign in again to find your basket and your orders."
)
SESSION_CHANGED = "You signed in or out in another tab meanwhile: please fill in the checkout again."


def _checkout_page_again(request: HttpRequest, context: dict, *, status: int) -> HttpResponse:
    """The checkout shown again with what was wrong; or, should another tab have signed in or out
    meanwhile, the checkout afresh with it told: this page's form carries the CSRF token of the
    session that ended, and would be refused."""
    told = context.get("error") or SESSION_CHANGED

    def afresh() -> HttpResponse:
        response = redirect("shop:checkout")
        storage = get_messages(request)
        storage.add(messages.ERROR, told)
        storage.update(response)
        return response

    answer_if_session_interrupted(request, afresh)
    return render(request, "shop/checkout.html", context, status=status)


def _checkout_submit(request: HttpRequest, *, basket_obj, view) -> HttpResponse:
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        context = {"form": form, "basket": view}
        shown = request.POST.get("basket_shown", "")
        if shown and shown != view.signature:
            # The page shown again carries the basket as it is now, and would be ordered at
            # its prices on the next submit: the buyer hears of the change with the field's.
            context.update(error=checkout_errors.BASKET_CHANGED, error_code=checkout_errors.CheckoutBasketChanged.code)
        return _checkout_page_again(request, context, status=400)
    reference = checkout_reference.checkout_reference(request)
    try:
        with decline_try(address=client_ip(request), email=form.cleaned_data["email"]) as attempt:
            try:
                order = checkouts.checkout_place(
                    basket=basket_obj,
                    customer=request.user,
                    delivery=form.delivery(),
                    card_number=form.cleaned_data["card_number"],
                    reference=reference,
                    started_by_buyer=checkout_reference.checkout_reference_is_buyers(request),
                    basket_shown=form.cleaned_data["basket_shown"],
                )
            except checkout_errors.CheckoutDeclined:
                attempt.declined()
                raise
    except DeclinesThrottled as exc:
        context = {"form": form, "basket": view, "error": str(exc), "error_code": "throttled"}
        response = _checkout_page_again(request, context, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except checkout_errors.CheckoutPlacedEarlier as exc:
        checkout_reference.checkout_reference_forget(request)
        if not exc.theirs:
            # Started as a guest before this account signed in on the browser: that order is
            # the guest's, confirmed to the address it gave, and shown to nobody here.
            messages.info(request, GUESTS_CHECKOUT_PLACED)
            return redirect("shop:checkout")
        kept = " What your basket held beyond it is kept there." if exc.basket_kept else ""
        return _to_order(
            request, exc.order, f"Your earlier try went through after all: this is your order, charged once.{kept}"
        )
    except (checkout_errors.CheckoutBasketChanged, checkout_errors.CheckoutBasketOrderedElsewhere) as exc:
        # Nothing was sent: the reference is kept, and the page shows the basket as it is now.
        view = selectors.basket_view(basket=basket_obj)
        context = {"form": form, "basket": view, "error": exc.message, "error_code": exc.code}
        return _checkout_page_again(request, context, status=exc.status)
    except checkout_errors.CheckoutInProgress as exc:
        # The first of two submits (a double click) is being placed: this browser is shown its
        # outcome, whichever it is, and nothing is sent again.
        return _checkout_placing_page(request, reference=reference, message=exc.message)
    except checkout_errors.CheckoutUnavailable as exc:
        # The outcome is unknown: keep the reference, so the retry cannot order twice.
        context = {"form": form, "basket": view, "error": exc.message, "error_code": exc.code}
        return _checkout_page_again(request, context, status=exc.status)
    except checkout_errors.CheckoutError as exc:
        # A definite no: the next submit is a new order attempt, with a new reference, unless
        # another try under this one (another tab's) may have placed the order.
        if exc.settled:
            checkout_reference.checkout_reference_renew(request)
        error = exc.message
        if form.add_order_service_errors(exc.fields):
            # What the order service named by its own paths (a line's price or quantity) has no
            # field on this page: the buyer is told what to do, not the path.
            error += f" {BASKET_NOT_ORDERABLE}"
        checkout_progress.checkout_refusal_keep(request, reference=reference, message=error)
        view = selectors.basket_view(basket=basket_obj)
        context = {"form": form, "basket": view, "error": error, "error_code": exc.code}
        return _checkout_page_again(request, context, status=exc.status)
    checkout_reference.checkout_reference_forget(request)
    kept = selectors.basket_count(basket=basket_obj)
    return _to_order(request, order, ADDED_MEANWHILE if kept else "")


NOT_PLACED_UNANSWERED = (
    "It did not go through, and your card was not charged: our order service may have been busy, or the card declined."
)
PLACING_REFRESH_SECONDS = 2
ADDED_MEANWHILE = "What you added to your basket while this order was placed is kept there."


GUESTS_CHECKOUT_PLACED = (
    "A checkout started on this browser before you signed in went through after all, and was "
    "confirmed to the email address it gave. Your basket is kept: order it when you are ready."
)
# The waiting page's: that checkout's own request may have taken its lines out of the basket
# they joined on sign-in (shop.services.basket_take_placed), or, answered later, not.
GUESTS_CHECKOUT_PLACED_WAITED = (
    "A checkout started on this browser before you signed in went through after all, and was "
    "confirmed to the email address it gave. Please check your basket before you order again: "
    "what that checkout ordered may have been taken out of it."
)
PLACING_STILL = "Your order is still being placed. This page shows it as soon as it is placed."


def _checkout_placing_page(request: HttpRequest, *, reference: str, message: str) -> HttpResponse:
    progress_url = f"{reverse('shop:checkout-placing')}?{urlencode({'reference': reference})}"
    context = {"message": message, "progress_url": progress_url, "refresh_seconds": PLACING_REFRESH_SECONDS}
    return render(request, "shop/checkout_placing.html", context, status=202)


@never_cache
@require_safe
def checkout_placing(request: HttpRequest) -> HttpResponse:
    """Where a checkout sent twice stands, for the page that waits on it: the order once placed
    (when this session may see it), this page again while a try may still place it, and the
    checkout with the basket kept when none did."""
    reference = request.GET.get("reference", "")
    if request.headers.get("Accept") == "application/json":
        # The waiting page's script, asking whether to look again (checkout_still_placing): it
        # reloads the page once the answer is no, instead of a refresh that restarts a screen
        # reader's reading every few seconds.
        return JsonResponse({"placing": checkout_progress.checkout_still_placing(request, reference=reference)})
    progress = checkout_progress.checkout_progress(request, reference=reference)
    if progress.order is not None:
        try:
            selectors.placed_order_get_for_request(request=request, number=progress.order.number)
        except Http404:
            if progress.browsers:
                # Started on this browser by a guest, before someone signed in on it: placed, and
                # confirmed to the address it gave, and shown to nobody here (as the checkout says).
                messages.info(request, GUESTS_CHECKOUT_PLACED_WAITED)
                return redirect("shop:checkout")
        else:
            messages.info(request, "Your order is placed, and charged once: it was sent twice, and placed once.")
            return redirect("shop:order", number=progress.order.number)
    elif progress.placing:
        return _checkout_placing_page(request, reference=reference, message=PLACING_STILL)
    refusal = checkout_progress.checkout_refusal_told(request, reference=reference)
    if refusal or progress.browsers:
        # No definite refusal kept: as a rule the first try's answer never came (the order
        # service busy or away; "declined, or sold out" misled buyers into another card), and
        # the in-doubt sweep found it not placed, its card not charged.
        why = refusal or NOT_PLACED_UNANSWERED
        kept = "Your basket is kept: please check it and order again."
        messages.info(request, f"Your order was not placed. {why} {kept}")
    # Anyone else (another browser, a reference made up) is sent to the checkout, told nothing.
    return redirect("shop:checkout")
