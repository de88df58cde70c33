"""URLs of the legacy order API, mounted at legacy-api/ by every deployment that serves it."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from legacy_api import api

app_name = "legacy_api"

urlpatterns = [
    path("ping", api.ping, name="ping"),
    path("orders", api.OrderCollectionApi.as_view(), name="order-list"),
    path("orders/<int:order_id>", api.OrderDetailApi.as_view(), name="order-detail"),
    path("stats", api.StatsApi.as_view(), name="stats"),
    path("stats/reset", api.StatsResetApi.as_view(), name="stats-reset"),
    # The schema of this service alone, whichever deployment serves it.
    path("schema", SpectacularAPIView.as_view(urlconf="config.urls_legacy"), name="schema"),
]
