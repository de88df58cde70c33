"""The storefront app: catalogue, basket, checkout and order pages."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Storefront"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.core.signals import request_finished

        import shop.navigation  # noqa: F401 - connects the receivers that keep its cache fresh
        from shop import catalogue_version, page_cache
        from shop.models import Category, Product
        from shop.signals import merge_basket_on_login, revoke_order_access_on_login

        user_logged_in.connect(merge_basket_on_login, dispatch_uid="shop.merge_basket_on_login")
        user_logged_in.connect(revoke_order_access_on_login, dispatch_uid="shop.revoke_order_access_on_login")
        catalogue_version.connect(Product, Category)
        # A kept page past its time is rendered again once its response is sent.
        request_finished.connect(page_cache.renewals_run, dispatch_uid="shop.page_renewals")
