"""Edge router middleware: the routes applied inside the all-in-one server and runserver.

It decides as CloudFront, Lambda@Edge and nginx do (the same matcher), then serves the
request from the chosen origin in-process: `hotpath` through the hot path's URLconf,
`minisite` from the rendered mini-site, `monolith` and `legacy-api` as usual (the legacy
API is mounted at /legacy-api/). The routes are compiled once per routes' version (one small
cache read a request, see edge.route_version), and every change replaces the version once
committed, so a route switched off takes effect on the very next request of every process. A
failure of the router never fails the request: it is served by the default origin.

As the edge does, it starts the trace and decides its sampling, whatever the request's
X-Amzn-Trace-Id says: a well-formed Root is kept, and a request without one gets one (the
origin's tracing, which runs after this middleware, continues it). The legacy API mounted here
is no viewer's origin but the workers' and the storefront's backend, which no edge stands in
front of once deployed: its calls keep the trace and decision their caller sent.

It matches the path Django resolves (WSGI's decoded PATH_INFO, dot segments removed as
nginx removes them); the canary tester header counts only with EDGE_CANARY_SECRET.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound

from edge import matcher
from edge.lambda_edge import CANARY_COOKIE_MAX_AGE, trace_header_ensure
from edge.models import LEGACY_API_PATH, MINISITE_ORIGIN

logger = logging.getLogger(__name__)

HOTPATH_URLCONF = "config.urls_hotpath"
TRACE_META = "HTTP_X_AMZN_TRACE_ID"


def _trace_sample_rate() -> float:
    return settings.TRACING_SAMPLE_RATE if getattr(settings, "TRACING_ENABLED", False) else 0.0


class EdgeRouterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not getattr(settings, "EDGE_ROUTER_ENABLED", False):
            return self.get_response(request)
        if not request.path_info.startswith(LEGACY_API_PATH):
            # Sampled afresh, a worker's call would leave its buyer's trace (a new Parent, kept
            # at the sample rate), and an unsampled order's call would start a trace of its own.
            trace = request.META.get(TRACE_META, "")
            request.META[TRACE_META] = trace_header_ensure(trace, now=time.time(), sample_rate=_trace_sample_rate())
        decision = self.decide(request)
        request.edge_route = decision.route
        request.edge_origin = decision.origin
        if decision.is_redirect:
            response = HttpResponse(status=decision.redirect_status or 302)
            response["Location"] = decision.redirect_url
            response["Cache-Control"] = "no-store"
        elif decision.origin == "hotpath":
            request.urlconf = HOTPATH_URLCONF
            response = self.get_response(request)
        elif decision.origin == MINISITE_ORIGIN:
            response = self.serve_minisite(request)
        else:
            response = self.get_response(request)
        response["X-Edge-Route"] = decision.route
        if decision.issued_canary_key:
            response.set_cookie(
                matcher.CANARY_COOKIE,
                decision.issued_canary_key,
                max_age=CANARY_COOKIE_MAX_AGE,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response

    def decide(self, request) -> matcher.Decision:
        try:
            from edge import selectors

            headers = {k.lower(): v for k, v in request.headers.items()}
            # PATH_INFO is already decoded (one character per byte): escape its "%" so the
            # matcher's decoding gives it back as it is.
            path = request.META.get("PATH_INFO", request.path).replace("%", "%25")
            return selectors.routes_compiled().decide(
                path,
                now=time.time(),
                cookies=request.COOKIES,
                headers=headers,
                canary_secret=getattr(settings, "EDGE_CANARY_SECRET", ""),
            )
        except Exception:
            logger.exception("edge router failed; serving %s from the default origin", request.path)
            return matcher.Decision(matcher.DEFAULT_ROUTE, matcher.DEFAULT_ORIGIN)

    def serve_minisite(self, request):
        from edge.exporters.minisite import render_minisite

        key = request.path.lstrip("/")
        if key.endswith("/") or not key:
            key += "index.html"
        body = render_minisite().get(key)
        if body is None or request.method not in ("GET", "HEAD"):
            return HttpResponseNotFound("Not found on the mini-site.")
        return HttpResponse(body, content_type="text/html; charset=utf-8")
