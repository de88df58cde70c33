"""The benchmark's ceiling: a trivial Django JSON view behind the same middleware and servers."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # wrk posts it the hot path's own order requests: no cookies, as on the hot path
def ceiling(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("", ceiling), path("ceiling", ceiling)]
