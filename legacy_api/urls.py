"""URLs of the legacy order API, mounted at legacy-api/ by every deployment that serves it."""

from django.urls import path, re_path

from legacy_api import api, api_base, api_holds
from legacy_api.schema import LegacySchemaView

app_name = "legacy_api"

urlpatterns = [
    path("ping", api.ping, name="ping"),
    path("orders", api.OrderCollectionApi.as_view(), name="order-list"),
    path("orders/lookup", api.OrderLookupApi.as_view(), name="order-lookup"),
    path("orders/<int:order_id>", api.OrderDetailApi.as_view(), name="order-detail"),
    path("holds", api_holds.HoldCollectionApi.as_view(), name="hold-list"),
    path("holds/<str:reference>", api_holds.HoldDetailApi.as_view(), name="hold-detail"),
    path("stock/<slug:product>", api_holds.StockApi.as_view(), name="stock"),
    path("stock/<slug:product>/receipts", api_holds.StockReceiptApi.as_view(), name="stock-receipts"),
    path("stats", api.StatsApi.as_view(), name="stats"),
    path("stats/reset", api.StatsResetApi.as_view(), name="stats-reset"),
    # The schema of this service alone, whichever deployment serves it.
    path("schema", LegacySchemaView.as_view(urlconf="config.urls_legacy"), name="schema"),
    # Whatever else is asked of the API is answered in its own JSON, not the site's 404 page.
    re_path(r"^.*$", api_base.not_found, name="not-found"),
]
