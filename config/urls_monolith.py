"""URLs of the monolith: storefront, basket, checkout, order pages and the merchant admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from config import buy_now
from config.media import media_serve
from config.order_finders import ORDER_FINDERS
from orders.urls import status_urlpatterns
from shop import views as shop_views

admin.site.site_header = "Fishing shop — merchant admin"
admin.site.site_title = "Merchant admin"
admin.site.index_title = "Shop administration"

urlpatterns = [
    # The merchant's live sale dashboard, inside the admin.
    path("admin/dashboard/", include("readmodels.urls")),
    # The admin's sign-in page offers "Forgotten your password?" where this name exists: staff
    # reset theirs by email as customers do (shop.password_reset).
    path(
        "admin/password-reset/",
        RedirectView.as_view(pattern_name="shop:password-reset"),
        name="admin_password_reset",
    ),
    path("admin/", admin.site.urls),
    # Hot-path orders placed before the route was switched off are still followed here.
    path("", include((status_urlpatterns, "orders"), namespace="order-status")),
    # Before the shop's own buy-now: while a sale is open, its orders go to the hot path's
    # acceptance here too (config.buy_now).
    path("shop/<slug:category>/<slug:product>/orders", buy_now.product_order, name="product-order"),
    # The order pages also find the sale's orders, which the hot path keeps (shop.order_finders).
    path("orders/lookup/", shop_views.order_lookup, {"finders": ORDER_FINDERS}, name="order-lookup"),
    path("orders/<str:number>/", shop_views.order, {"finders": ORDER_FINDERS}, name="order"),
    path("account/orders/", shop_views.account_orders, {"finders": ORDER_FINDERS}, name="account-orders"),
    path("", include("shop.urls")),
    # Product pictures are served by the shop itself: there is no CDN in front of media.
    re_path(r"^media/(?P<path>.*)$", media_serve),
]

# Errors: JSON in one shape under the API prefixes, the shop's error pages elsewhere.
handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
