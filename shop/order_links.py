"""Signed, expiring links to one's own order: what the confirmation email and "My orders" give
instead of a lookup filled in, so no page has to answer for a number and an email alone.

A link carries the order's number and the buyer's email, sealed (encrypted and signed) with a
key derived from the project's under a salt of its own (a token minted for another purpose
never opens an order), and the moment it stops working. Sealed, not only signed: the link is
written into every access log it passes (the edge's, the servers'), and a signed payload is
only base64, which would give the buyer's address to whoever reads them. Opening it grants the
browser's session that one order, as a lookup does. The session's access to orders is granted
and taken back here alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import signing
from django.http import HttpRequest

from shop.models import PlacedOrder
from shop.order_input import email_key
from shop.selectors import SESSION_ORDERS

SALT = "shop.order_links.order-access"
EMAIL_LINK_VALIDITY = timedelta(days=30)
# Minted each time the signed-in account opens the page: it only has to outlive a click.
ACCOUNT_LINK_VALIDITY = timedelta(days=1)

# Sale orders (the hot path's) by number, with the email their link proved: the order page
# finds them again through the deployment's finders.
SESSION_SALE_ORDERS = "shop_sale_orders"


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class OrderAccess:
    number: str
    email: str


class LinkRefused(Exception):
    """`reason` is "expired" or "invalid" (tampered, cut short, or for another order)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _sealer() -> MultiFernet:
    """Seals with SECRET_KEY's key; opens with its fallbacks' too, so a rotation keeps links working."""
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    keys = [hmac.new(secret.encode(), SALT.encode(), hashlib.sha256).digest() for secret in secrets]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])


def order_access_token(*, number: str, email: str, valid_for: timedelta = EMAIL_LINK_VALIDITY) -> str:
    payload = {"n": number, "e": email_key(email), "x": int(_now() + valid_for.total_seconds())}
    sealed = _sealer().encrypt(json.dumps(payload, separators=(",", ":")).encode())
    return sealed.decode().rstrip("=")  # no padding to escape in a URL


def _opened(token: str):
    padded = (token + "=" * (-len(token) % 4)).encode()
    try:
        # One spelling per token: base64's spare bits in the last character changed are a changed link.
        if base64.urlsafe_b64encode(base64.urlsafe_b64decode(padded)) == padded:
            return json.loads(_sealer().decrypt(padded))
    except (InvalidToken, ValueError):
        pass
    # A link emailed before links were sealed, still open until it expires (30 days at most).
    return signing.loads(token, salt=SALT)


def order_link_path(*, number: str, email: str, valid_for: timedelta = EMAIL_LINK_VALIDITY) -> str:
    token = order_access_token(number=number, email=email, valid_for=valid_for)
    return f"/orders/{quote(number, safe='')}/?access={token}"


def order_access_check(*, token: str, number: str) -> OrderAccess:
    """What a token grants, if it is ours, unexpired and for the order in the URL."""
    try:
        payload = _opened(token)
    except signing.BadSignature:
        raise LinkRefused("invalid", "This link is not valid: it may have been cut short or changed.") from None
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in ("n", "e")):
        raise LinkRefused("invalid", "This link is not valid: it may have been cut short or changed.")
    if not isinstance(payload.get("x"), int) or payload["x"] <= _now():
        raise LinkRefused("expired", "This link has expired.")
    if payload["n"].lower() != number.strip().lower():
        raise LinkRefused("invalid", "This link is for another order.")
    return OrderAccess(number=payload["n"], email=payload["e"])


def order_grant_access(request: HttpRequest, order: PlacedOrder) -> None:
    """This session may see the order (it placed it, or looked it up with its email)."""
    numbers = list(request.session.get(SESSION_ORDERS, []))
    if order.number not in numbers:
        # Bounded, so a session cannot grow without end by looking orders up.
        request.session[SESSION_ORDERS] = [*numbers, order.number][-50:]


def sale_order_grant_access(request: HttpRequest, access: OrderAccess) -> None:
    granted = dict(request.session.get(SESSION_SALE_ORDERS, {}))
    granted.pop(access.number, None)
    granted[access.number] = access.email
    # Bounded, so a session cannot grow without end by opening links.
    request.session[SESSION_SALE_ORDERS] = dict(list(granted.items())[-50:])


def order_access_revoke(request: HttpRequest) -> None:
    """This session may no longer see the orders it was granted (placed signed out, looked up,
    opened by a link): on sign-in the browser may have passed to another person, and an account
    sees the orders it placed, and those of its verified email, without them."""
    request.session.pop(SESSION_ORDERS, None)
    request.session.pop(SESSION_SALE_ORDERS, None)


def sale_order_access_for_session(request: HttpRequest, *, number: str) -> OrderAccess | None:
    email = request.session.get(SESSION_SALE_ORDERS, {}).get(number)
    return OrderAccess(number=number, email=email) if email else None
