"""The shop's media (product pictures), served by the shop itself from its own origin. Each file
is sent so that nothing in it can run as the shop when it is opened on its own: a sandbox with no
script, no plugin and no load but the file itself, and no type sniffing. An image shown in a page
(<img>) is not affected. What may be uploaded is checked too (shop.picture_upload)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.static import serve

MEDIA_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


def media_serve(request: HttpRequest, path: str) -> HttpResponse:
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Content-Security-Policy"] = MEDIA_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    return response
