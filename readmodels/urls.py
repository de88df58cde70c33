"""The live sale dashboard, mounted at admin/dashboard/ before the admin's own URLs."""

from django.urls import path

from readmodels import views

app_name = "readmodels"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("data.json", views.dashboard_json, name="dashboard-data"),
]
