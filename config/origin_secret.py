"""Refuses requests that did not come through the edge (CloudFront or the exported nginx).

The origins' own domains (API Gateway, the monolith's load balancer) are public: without
this check anybody could call them directly and go round the edge's routes. The edge adds
`X-Origin-Verify: <EDGE_ORIGIN_SECRET>` to every request it sends to an origin; a process
with EDGE_ORIGIN_SECRET set answers 403 to any request without that exact value. With the
setting empty (runserver, the all-in-one server, a private service) nothing is checked.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from config.headers import request_header

ORIGIN_SECRET_HEADER = "X-Origin-Verify"  # noqa: S105 - a header name
MESSAGE = "This address only answers requests sent through the shop's edge."


class OriginSecretMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        secret = getattr(settings, "EDGE_ORIGIN_SECRET", "")
        if secret:
            given = request_header(request, ORIGIN_SECRET_HEADER)
            if not hmac.compare_digest(given.encode(), secret.encode()):
                return refusal(request)
        return self.get_response(request)


def refusal(request) -> HttpResponse:
    if "text/html" in request.headers.get("Accept", ""):
        body = f"<!doctype html><title>403 Forbidden</title><h1>Forbidden</h1><p>{MESSAGE}</p>"
        return HttpResponse(body, status=403, content_type="text/html; charset=utf-8")
    return JsonResponse({"error": "forbidden", "detail": MESSAGE, "header": ORIGIN_SECRET_HEADER}, status=403)
