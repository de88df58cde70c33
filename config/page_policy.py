"""The Content-Security-Policy of the shop's pages: a second guard behind the templates'
escaping. A page runs scripts from the shop's own origin only (every page's scripts are files
under /static/; the data a page hands them is JSON, `json_script`, which is not run), takes its
styles from stylesheets there too (no `style` attribute or element: bars and depths are drawn
as SVG or with classes, and scripts set styles through the DOM, which the policy allows), posts
its forms and opens its connections only there, loads no plugin, and may not be framed (as
X-Frame-Options says). The media files keep their own, stricter policy (config.media).

Only HTML answers carry it: a JSON answer is no document, and the hot path's answers, most of
them sold-out refusals, are spared the header's bytes. CONTENT_SECURITY_POLICY sets another
policy; empty, none (a CDN in front that sets its own)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
# With DEBUG on, Django answers these with its own technical pages, whose styles and scripts are
# inline: a developer's page, which the policy would leave bare.
DEBUG_PAGES = frozenset({404, 500})


class PagePolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if (
            policy
            and HEADER not in response
            and response.get("Content-Type", "").startswith("text/html")
            and not (settings.DEBUG and response.status_code in DEBUG_PAGES)
        ):
            response[HEADER] = policy
        return response
