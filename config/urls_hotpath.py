"""URLs of the hot-path deployment: the buy-now page, order acceptance and status polling."""

from django.urls import include, path

urlpatterns = [path("", include("orders.urls"))]

# Errors: JSON in one shape under the API prefixes, the shop's self-contained pages elsewhere.
handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
