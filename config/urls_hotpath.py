"""URLs of the hot-path deployment: the buy-now page, order acceptance and status polling.

The hot path's own patterns, at the top level rather than through `include()`: every request
of a stampede is resolved here, and a nested resolver cost an order's resolution 9.2 µs
against 5.2 (one process, 100,000 resolutions), most of what resolving a sold-out answer
costs beyond the trivial view's 4.6."""

from orders.urls import urlpatterns as orders_urlpatterns

urlpatterns = [*orders_urlpatterns]

# Errors: JSON in one shape under the API prefixes, the shop's error pages elsewhere.
handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
