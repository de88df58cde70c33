"""URLs of the hot-path deployment: the buy-now page, order acceptance and status polling."""

from django.urls import include, path

urlpatterns = [path("", include("orders.urls"))]
