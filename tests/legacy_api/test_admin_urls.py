"""The admin beside the legacy API, for admin tests that call the API with what the admin showed."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("legacy-api/", include("legacy_api.urls"))]
