"""URLs of the hot path, all under a hot product's prefix so the edge can route them there."""

from django.urls import path, re_path

from orders import api_schema, views

# The status URL is also served by the monolith (config.urls_monolith): a buyer still polling
# when the merchant switches the route off must keep seeing the order, not a 404.
status_urlpatterns = [
    re_path(
        r"^shop/(?P<category>[-\w]+)/(?P<product>[-\w]+)/orders/(?P<number>T\d{1,18})/(?P<token>[-\w]{16,64})$",
        views.order_status,
        name="order_status",
    ),
]
# Order acceptance first: Django tries the patterns in turn, and a stampede's requests are
# nearly all orders (each pattern tried before it costs every sold-out answer a few µs).
urlpatterns = [
    path("shop/<slug:category>/<slug:product>/orders", views.order_create, name="order_create"),
    path("shop/<slug:category>/<slug:product>/", views.buy_now, name="buy_now"),
    path("shop/<slug:category>/<slug:product>/stock", views.stock, name="stock"),
    path("shop/<slug:category>/<slug:product>/orders/schema", api_schema.api_schema, name="schema"),
    *status_urlpatterns,
]
