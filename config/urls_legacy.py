"""URLs of the legacy order API deployment (its own gunicorn, or Lambda behind API Gateway)."""

from django.urls import include, path

urlpatterns = [path("legacy-api/", include("legacy_api.urls"))]

# Errors: JSON in one shape under the API prefixes, the shop's error pages elsewhere.
handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
