"""A checkout's reference, kept in the browser's session from the checkout page until an answer
settles it: every submit sends the same one, so a retry never orders twice (shop.checkouts),
and who started it says whose an order found under it is."""

from __future__ import annotations

import contextlib
import uuid

from django.contrib.sessions.backends.base import UpdateError
from django.http import HttpRequest

SESSION_CHECKOUT_REFERENCE = "shop_checkout_reference"
# Who minted it: the account's pk, or None for a guest (login() keeps a guest's session data).
SESSION_CHECKOUT_STARTED_BY = "shop_checkout_started_by"


def checkout_reference(request: HttpRequest) -> str:
    """The reference of this checkout: the same one for every submit until it is settled."""
    reference = request.session.get(SESSION_CHECKOUT_REFERENCE)
    if not reference:
        reference = str(uuid.uuid4())
        request.session[SESSION_CHECKOUT_REFERENCE] = reference
        request.session[SESSION_CHECKOUT_STARTED_BY] = _buyer_id(request)
        # Saved now, before the order service is called: the session middleware does not
        # save on a 5xx answer, and a timeout is exactly when the same reference must be sent again.
        request.session.save()
    return reference


def checkout_reference_open(request: HttpRequest) -> str | None:
    """The reference a checkout page minted that no answer has settled yet, if any."""
    return request.session.get(SESSION_CHECKOUT_REFERENCE)


def checkout_reference_forget(request: HttpRequest) -> None:
    """After a definite answer (placed, declined, no stock) the next attempt is a new order."""
    request.session.pop(SESSION_CHECKOUT_REFERENCE, None)
    request.session.pop(SESSION_CHECKOUT_STARTED_BY, None)


def checkout_reference_renew(request: HttpRequest) -> None:
    """After a definite no: the next submit is a new order, under a new reference."""
    checkout_reference_forget(request)
    # The session may have been ended meanwhile (signed in or out in another tab): the one the
    # browser holds now gets its own reference on its checkout page, and this answer is shown.
    with contextlib.suppress(UpdateError):
        checkout_reference(request)


def checkout_reference_is_buyers(request: HttpRequest) -> bool:
    """Whether whoever checks out now started this checkout's reference: not so once a guest's
    browser was signed in to an account, whose holder may be someone else."""
    return request.session.get(SESSION_CHECKOUT_STARTED_BY) == _buyer_id(request)


def _buyer_id(request: HttpRequest) -> int | None:
    return request.user.pk if request.user.is_authenticated else None
