"""Customers' email addresses: the signed, expiring link that proves an account reads its
address, the record of that proof, and what drops it (a new address).

Orders found by email rather than by the account that placed them (the sale's, guests')
are shown only for a verified address: anyone can type a buyer's address into a sign-up form,
only the buyer can open the link sent there.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from shop.models import VerifiedEmail
from shop.order_input import email_key, mailbox_key
from shop.window_counts import digest, window_count, window_now

logger = logging.getLogger(__name__)

# Its own salt, so no other signed value of the shop can pass for a verification link.
VERIFICATION_SALT = "shop.accounts.email-verification"
VERIFICATION_MAX_AGE_SECONDS = 3 * 24 * 3600

# Verification links per window, counted for the account that asks and for the address they
# go to, whichever path sends them (sign-up, a change of address, "send the link again"): each
# is an email to an address that may not be the account holder's, so no path, and no number of
# new accounts, may become a way to flood it. The first link, and RESEND_LIMIT more.
RESEND_LIMIT = 3
LINK_LIMIT = 1 + RESEND_LIMIT
RESEND_WINDOW_SECONDS = 3600


# --- Reads ------------------------------------------------------------------------------


def email_is_verified(*, user: AbstractBaseUser) -> bool:
    """True when the account's current address is one it proved it reads."""
    email = email_key(getattr(user, "email", ""))
    if not email or not user.is_authenticated:
        return False
    return VerifiedEmail.objects.filter(user=user, email=email).exists()


# --- The link ---------------------------------------------------------------------------


def email_verification_token(*, user: AbstractBaseUser) -> str:
    """Signed and timestamped, bound to the account and to the address it was sent to: it
    stops working when it expires or when the account's address changes."""
    payload = {"user": user.pk, "email": email_key(user.email)}
    return signing.dumps(payload, salt=VERIFICATION_SALT, compress=True)


def email_verification_link(*, user: AbstractBaseUser) -> str:
    path = reverse("shop:verify-email", kwargs={"token": email_verification_token(user=user)})
    return f"{settings.SHOP_BASE_URL}{path}"


class LinksThrottled(Exception):
    """Enough links went to this account or this address for now: none is sent, and nothing
    changed; `retry_after` is how long until the next window opens, in seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"verification links throttled for {retry_after} s")
        self.retry_after = retry_after


def email_verification_send(*, user: AbstractBaseUser) -> bool:
    """Emails the link to the account's address now, counted by email_verification_throttle
    (raises LinksThrottled, sending nothing, over its limit); False when the mail could not be
    sent (the account stands, and the account page offers to send it again)."""
    if not email_key(user.email):
        return False
    email_verification_throttle(user=user, email=user.email)
    return _link_mail(user=user)


def _link_mail(*, user: AbstractBaseUser) -> bool:
    # Only ever called once email_verification_throttle has counted this link.
    context = {
        "user": user,
        "link": email_verification_link(user=user),
        "days": VERIFICATION_MAX_AGE_SECONDS // (24 * 3600),
    }
    try:
        send_mail(
            subject="Confirm your email address for The Fishing Shop",
            message=render_to_string("shop/accounts/email_verification.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
    except Exception:
        logger.exception("could not email the verification link of account %s", user.pk)
        return False
    return True


class VerificationRefused(Exception):
    """The link does not verify this account's address; `reason` says why, for the page."""

    MESSAGES = {
        "invalid": "This link is not valid. Check that you opened the whole link from the email.",
        "expired": "This link has expired. Send yourself a new one from your account page.",
        "other_account": "This link was sent for another account. Sign in to the account it was sent for.",
        "email_changed": "This link was sent to an address your account no longer uses.",
    }

    def __init__(self, reason: str):
        super().__init__(self.MESSAGES[reason])
        self.reason = reason
        self.message = self.MESSAGES[reason]


def email_verify(*, user: AbstractBaseUser, token: str) -> VerifiedEmail:
    """Marks the address the token names verified for the account it names, which must be
    the account signed in: the link proves the mailbox, the session proves the account.
    Opening the link twice is harmless."""
    try:
        payload = signing.loads(token, salt=VERIFICATION_SALT, max_age=VERIFICATION_MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise VerificationRefused("expired") from None
    except signing.BadSignature:
        raise VerificationRefused("invalid") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("email"), str):
        raise VerificationRefused("invalid")
    if payload.get("user") != user.pk:
        raise VerificationRefused("other_account")
    email = email_key(user.email)
    if not email or payload["email"] != email:
        raise VerificationRefused("email_changed")
    verified, _ = VerifiedEmail.objects.get_or_create(user=user, email=email)
    return verified


# --- Changing the address ---------------------------------------------------------------


def account_email_change(*, user: AbstractBaseUser, email: str) -> bool:
    """Gives the account a new address, unverified: every earlier proof is dropped, so an
    address the account gave up is not trusted again without a new link. Sends the link to
    the new address; False when the address did not change. Raises LinksThrottled, changing
    nothing, when no more links may go to the account or to the new address for now: an
    address without its link could not be verified, and the old one would lose its proof."""
    email = email.strip()
    if email_key(email) == email_key(user.email):
        return False
    if email:
        email_verification_throttle(user=user, email=email)
    with transaction.atomic():
        user.email = email
        user.save(update_fields=["email"])
        VerifiedEmail.objects.filter(user=user).delete()
    if email:
        _link_mail(user=user)
    return True


# --- Throttle ---------------------------------------------------------------------------


def email_verification_throttle(*, user: AbstractBaseUser, email: str) -> None:
    """Counts one verification link for the account and one for the mailbox (by a keyed hash of
    its mailbox_key: every spelling that mail reaches as one inbox, `+tags` included, counts as
    one, and no address is written into the cache); raises LinksThrottled when either is over
    LINK_LIMIT in the current window. Every path that sends a link counts here first."""
    bucket, wait = window_now(RESEND_WINDOW_SECONDS)
    address = digest(mailbox_key(email))
    counts = [
        window_count(f"shop:verify-links:account:{user.pk}:{bucket}", RESEND_WINDOW_SECONDS),
        window_count(f"shop:verify-links:address:{address}:{bucket}", RESEND_WINDOW_SECONDS),
    ]
    if max(counts) > LINK_LIMIT:
        raise LinksThrottled(retry_after=wait)
