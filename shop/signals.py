"""Receivers: an anonymous shopper's basket follows them when they sign in."""

from __future__ import annotations

from shop.models import Basket
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
