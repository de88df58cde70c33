"""Receivers of sign-in: an anonymous shopper's basket follows them; the orders the
anonymous session was shown do not."""

from __future__ import annotations

from shop.models import Basket
from shop.order_links import order_access_revoke
from shop.selectors import SESSION_BASKET
from shop.services import basket_merge_into_user


def merge_basket_on_login(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    basket_id = request.session.pop(SESSION_BASKET, None)
    if not basket_id:
        return
    basket = Basket.objects.filter(pk=basket_id, owner__isnull=True).first()
    basket_merge_into_user(basket=basket, user=user)


def revoke_order_access_on_login(sender, request, user, **kwargs) -> None:
    """Django's login() keeps the anonymous session's data: the orders a guest placed or
    looked up on this browser would show to whoever signs in next (sign-up included)."""
    if request is None or not hasattr(request, "session"):
        return
    order_access_revoke(request)
