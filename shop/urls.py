"""URLs of the storefront: catalogue, basket (pages and JSON API), checkout, orders, accounts."""

from django.contrib.auth import views as auth_views
from django.urls import path

from shop import account_views, api, api_schema, checkout_views, password_reset, views

app_name = "shop"
urlpatterns = [
    path("", views.root, name="root"),
    path("shop/", views.home, name="home"),
    path("shop/<slug:category>/", views.category, name="category"),
    path("shop/<slug:category>/<slug:product>/", views.product, name="product"),
    path("shop/<slug:category>/<slug:product>/orders", api.product_order, name="product-order"),
    path("basket/", views.basket, name="basket"),
    path("basket/add/", views.basket_add, name="basket-add"),
    path("basket/lines/<slug:product>/update/", views.basket_line_update, name="basket-line-update"),
    path("basket/lines/<slug:product>/remove/", views.basket_line_remove, name="basket-line-remove"),
    path("api/basket", api.basket_detail, name="api-basket"),
    path("api/basket/items", api.basket_items, name="api-basket-items"),
    path("api/basket/items/<slug:slug>", api.basket_item, name="api-basket-item"),
    path("api/schema", api_schema.api_schema, name="api-schema"),
    path("checkout/", checkout_views.checkout, name="checkout"),
    path("checkout/placing/", checkout_views.checkout_placing, name="checkout-placing"),
    path("orders/lookup/", views.order_lookup, name="order-lookup"),
    path("orders/<str:number>/", views.order, name="order"),
    path("account/", account_views.account, name="account"),
    path("account/email/send-link/", account_views.account_email_send_link, name="account-email-send-link"),
    path("account/orders/", views.account_orders, name="account-orders"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="shop/accounts/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/verify-email/<str:token>/", account_views.verify_email, name="verify-email"),
    path("accounts/password-reset/", password_reset.PasswordResetView.as_view(), name="password-reset"),
    path("accounts/password-reset/sent/", password_reset.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("accounts/password-reset/done/", password_reset.PasswordResetDoneView.as_view(), name="password-reset-done"),
]
