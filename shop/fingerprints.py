"""The fingerprint of a buy-now body (shop.order_input.OrderInput): a keyed hash of what was
asked, kept with an Idempotency-Key's order or refusal so that a replay is told from another
body without keeping the body. The hot path and the monolith compute it with this one function.

It holds no more of the card than its last four digits, which the order keeps beside it anyway:
a hash over the whole number, with the database and SECRET_KEY (which every process holds),
gives the card back in seconds (its first six and last four digits known, Luhn's check digit:
some 10^5 numbers to try). So a retry with another card with the same last four digits is the
same body: it is answered with the first order, and nothing more is charged."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings


def _keyed(canonical: list) -> str:
    body = json.dumps(canonical, separators=(",", ":"))
    return hmac.new(settings.SECRET_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()


def order_fingerprint(*, product_slug: str, quantity: int, name: str, email: str, card_last4: str) -> str:
    """The body's fingerprint: the product, the quantity, the buyer's name and email (its case
    folded) and the card's last four digits. The data migrations that renewed the rows of the
    releases before (orders 0008, shop 0021) compute it from each row's own fields."""
    return _keyed([product_slug, quantity, name, email.lower(), card_last4[-4:]])


def order_fingerprint_before(*, product_slug: str, quantity: int, name: str, email: str, card_number: str) -> str:
    """The form the releases before kept, over the whole card number: never stored any more, only
    computed from a request (which carries its card anyway) to recognise a row that still holds
    one, which is then renewed (fingerprint_renew). Such rows are those no migration could
    recompute (a buy-now refusal for a declined card holds no body, see BuyNowRefusal) and those a
    process of the release before wrote while the new release was being rolled out."""
    return _keyed([product_slug, quantity, name, email.lower(), card_number])


def fingerprint_renew(queryset, *, stored: str, fingerprint: str) -> None:
    """Rewrites a row's fingerprint in the release before's form (`stored`, just matched by the
    request's own body) to this one: a card-wide hash is not kept once it is recognised."""
    if stored and stored != fingerprint:
        queryset.filter(fingerprint=stored).update(fingerprint=fingerprint)
