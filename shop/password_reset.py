"""A forgotten password: Django's reset (a one-time link, signed with the account's password
and last sign-in, so it stops working once used), in the shop's pages, with the shop's rules.

- The account is found by its address as the shop compares addresses (shop.order_input.email_key,
  through shop.order_finders.with_email), not by a database's case folding.
- Each mailbox, and each client network, is sent at most RESET_LIMIT links an hour: the form
  takes any address, so it must not become a way to flood someone's inbox. Past the limit the
  page says the same as for an address with no account, and nothing is sent.
- A password set through the link also ends the sign-in lockout of its account (django-axes):
  whoever reads the account's mail has proved it is theirs, however many wrong passwords a
  stranger tried meanwhile.
- The link is written and handed to the mail server by a thread of the process, after the
  answer: the request itself only looks the address up and signs the link, so how long it takes
  does not tell whether an account has that address, however slow the mail server is. A process
  stopped in between loses the link (its exit waits for those already asked for); the page says
  to ask again if none arrives.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from axes.utils import reset as axes_reset
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.urls import reverse_lazy

from shop.forms import ShopEmailField
from shop.order_finders import with_email
from shop.order_input import client_ip_network, mailbox_key
from shop.window_counts import digest, window_count, window_now

logger = logging.getLogger(__name__)

RESET_LIMIT = 3
RESET_WINDOW_SECONDS = 3600

# One thread a process writes and sends the links, in the order they were asked for.
_mailer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-reset-mail")


def reset_links_allowed(*, email: str, network: str | None) -> bool:
    """Counts one link for the mailbox and one for the client's network (keyed hashes: no address
    is written into the cache); False when either is past RESET_LIMIT in this hour."""
    bucket, _wait = window_now(RESET_WINDOW_SECONDS)
    counted = [f"mailbox:{digest(mailbox_key(email))}"]
    if network:
        counted.append(f"network:{digest(network)}")
    counts = [window_count(f"shop:reset-links:{key}:{bucket}", RESET_WINDOW_SECONDS) for key in counted]
    return max(counts) <= RESET_LIMIT


class ShopPasswordResetForm(PasswordResetForm):
    email = ShopEmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def get_users(self, email):
        # As every lookup by address finds its rows (shop.order_finders.with_email): an address is
        # kept as written at sign-up, capitals included, and only its key says it is this one.
        active = get_user_model()._default_manager.filter(is_active=True)
        return (user for user in with_email(active, field="email", email=email) if user.has_usable_password())

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        # Rendered and sent after the answer (the module's docstring).
        _mailer.submit(self._send_mail_logged, subject_template_name, email_template_name, context, *args, **kwargs)

    def _send_mail_logged(self, subject_template_name, email_template_name, context, *args, **kwargs):
        # Django's own send_mail logs a mail server's refusal; what fails before it (a template
        # that does not render) would end in a future nobody reads: the link lost, unlogged.
        try:
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
        except Exception:
            logger.exception("could not write the password reset link of account %s", context["user"].pk)


def links_sent(timeout: float = 30) -> None:
    """Returns once every link this process was asked for so far has been handed to the mail
    server (or its failure logged)."""
    _mailer.submit(lambda: None).result(timeout=timeout)


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ShopPasswordResetForm
    template_name = "shop/accounts/password_reset.html"
    email_template_name = "shop/accounts/password_reset_email.txt"
    subject_template_name = "shop/accounts/password_reset_subject.txt"
    success_url = reverse_lazy("shop:password-reset-sent")

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        if not reset_links_allowed(email=email, network=client_ip_network(self.request)):
            logger.warning("password reset links throttled for one mailbox or network")
            return super(auth_views.PasswordResetView, self).form_valid(form)  # the same page, nothing sent
        # Links to the shop as buyers reach it, not as this request's Host says.
        self.extra_email_context = {"base_url": settings.SHOP_BASE_URL}
        return super().form_valid(form)


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "shop/accounts/password_reset_sent.html"

    def get_context_data(self, **kwargs):
        days = max(1, settings.PASSWORD_RESET_TIMEOUT // (24 * 3600))
        return {**super().get_context_data(**kwargs), "limit": RESET_LIMIT, "days": days}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "shop/accounts/password_reset_confirm.html"
    success_url = reverse_lazy("shop:password-reset-done")

    def form_valid(self, form):
        response = super().form_valid(form)
        axes_reset(username=form.user.get_username())
        return response


class PasswordResetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "shop/accounts/password_reset_done.html"
