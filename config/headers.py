"""One request header, read from the WSGI environ.

`request.headers` builds a case-insensitive copy of every header on its first use: a few
microseconds that the hot path's answers, most of them a sold-out refusal, pay for one or two
headers. Only for names other than Content-Type and Content-Length (which WSGI keeps without
the HTTP_ prefix)."""

from __future__ import annotations

from django.http import HttpRequest


def request_header(request: HttpRequest, name: str, default: str = "") -> str:
    """The header `name` as the client sent it (as request.headers.get would give it)."""
    return request.META.get("HTTP_" + name.upper().replace("-", "_"), default)
