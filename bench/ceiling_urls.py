"""The benchmark's ceiling: a trivial Django JSON view behind the same middleware and servers."""

from django.http import JsonResponse
from django.urls import path


def ceiling(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("", ceiling), path("ceiling", ceiling)]
