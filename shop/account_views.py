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


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The account's email, whether it is verified, and changing it (with the password)."""
    if request.method == "GET":
        return _account_page(request, EmailChangeForm(request))
    form = EmailChangeForm(request, request.POST)
    if not form.is_valid():
        # A password guessed once too often: django-axes answers with its lockout page.
        return _account_page(request, form, status=400)
    try:
        changed = accounts.account_email_change(user=request.user, email=form.cleaned_data["email"])
    except accounts.LinksThrottled as exc:
        form.add_error(
            "email",
            "We have sent several confirmation links for your account or to this address in the last hour. "
            f"Your email is unchanged: try again in {_minutes(exc.retry_after)}.",
        )
        return _account_page(request, form, status=400)
    if changed:
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
    """Sends the verification link again, within the limit every link counts against."""
    back = _safe_next(request, reverse("shop:account"))
    if accounts.email_is_verified(user=request.user):
        messages.info(request, "Your email is already confirmed.")
        return redirect(back)
    try:
        sent = accounts.email_verification_send(user=request.user)
    except accounts.LinksThrottled as exc:
        response = _account_page(request, EmailChangeForm(request), status=429, throttled=True)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if sent:
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
