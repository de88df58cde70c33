"""The account pages: the account's email and its verification, and the link from the email.

Views only orchestrate: shop.accounts signs, checks and records.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from shop import accounts
from shop.account_forms import EmailChangeForm
from shop.views import _safe_next


def _account_page(request: HttpRequest, form: EmailChangeForm, *, status: int = 200, **extra) -> HttpResponse:
    context = {"form": form, "email_verified": accounts.email_is_verified(user=request.user), **extra}
    return render(request, "shop/accounts/account.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The account's email, whether it is verified, and changing it (with the password)."""
    if request.method == "GET":
        return _account_page(request, EmailChangeForm(request.user))
    form = EmailChangeForm(request.user, request.POST)
    if not form.is_valid():
        return _account_page(request, form, status=400)
    if accounts.account_email_change(user=request.user, email=form.cleaned_data["email"]):
        messages.success(
            request,
            f"Your email is now {request.user.email}. We sent a link there: open it to confirm the address.",
        )
    else:
        messages.info(request, "That is already your email.")
    return redirect("shop:account")


@login_required
@require_POST
def account_email_send_link(request: HttpRequest) -> HttpResponse:
    """Sends the verification link again, a few times an hour at most."""
    back = _safe_next(request, reverse("shop:account"))
    if accounts.email_is_verified(user=request.user):
        messages.info(request, "Your email is already confirmed.")
        return redirect(back)
    throttled = accounts.email_verification_resend_throttle(user=request.user)
    if throttled is not None:
        response = _account_page(request, EmailChangeForm(request.user), status=429, throttled=True)
        response["Retry-After"] = str(throttled.retry_after)
        return response
    if accounts.email_verification_send(user=request.user):
        messages.success(request, f"We sent a new link to {request.user.email}. It works for three days.")
    else:
        messages.error(request, "We could not send the email just now. Please try again in a few minutes.")
    return redirect(back)


@never_cache
@login_required
@require_GET
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the email. Signed in as the account it was sent for, it verifies the
    address; signed out, sign-in comes first (login_required brings the visitor back)."""
    try:
        accounts.email_verify(user=request.user, token=token)
    except accounts.VerificationRefused as exc:
        status = 403 if exc.reason == "other_account" else 400
        context = {"reason": exc.reason, "message": exc.message}
        return render(request, "shop/accounts/verify_refused.html", context, status=status)
    messages.success(request, f"Thank you: {request.user.email} is confirmed. Your orders made with it are below.")
    return redirect("shop:account-orders")
