"""URLs of the legacy order API deployment (its own gunicorn, or Lambda behind API Gateway)."""

from django.urls import include, path

urlpatterns = [path("legacy-api/", include("legacy_api.urls"))]
