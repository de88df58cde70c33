"""Error answers: JSON in one shape under the APIs' prefixes, the shop's pages elsewhere.

Under `/api/`, `/legacy-api/`, a product's order URLs (`/shop/<c>/<p>/orders...`) and its
stock (`/shop/<c>/<p>/stock`, the hot path's JSON) every
error is `{"error": code, "detail": text, "fields"?: {name: [messages]}}`, whatever raised
it: a view, Django itself (404, 405, CSRF, a body too large) or a service that is away
(503 with Retry-After). Elsewhere the error pages are the shop's pages (its header, footer and
stylesheet) rendered with no request: no context processor runs and no session is read, so a
500 renders with the database and the cache away; with either of them away, a page is a 503
saying so, with Retry-After.
"""

from __future__ import annotations

import json
import logging
import re

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.template import loader
from django.views import csrf as django_csrf

from shop.navigation import nav_categories

logger = logging.getLogger(__name__)

# The paths that answer JSON, their errors included: the APIs, the hot path's orders and stock,
# and the dashboard's figures, which its page and scripts poll.
API_PATH = re.compile(
    r"^/(?:api(?:/|$)|legacy-api(?:/|$)|shop/[^/]+/[^/]+/(?:orders(?:/|$)|stock/?$)|admin/dashboard/data\.json$)"
)
RETRY_AFTER_SECONDS = 5
NULL_MESSAGE = "Must not contain a null character."
CHARSET_MESSAGE = "Form data must be sent as UTF-8."
LENGTH_MESSAGE = "Must be a number of bytes."
# What a form's body may declare: decoded as another (UTF-7, say), it can yield text no query,
# hash or template can encode (a lone surrogate), and that was a 500 on every form page.
FORM_CHARSETS = {"utf-8", "utf8"}
FORM_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded"}

ERROR_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing here."),
    405: ("method_not_allowed", "This address does not take that method."),
    406: ("not_acceptable", "This address answers JSON only."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send application/json."),
    422: ("unprocessable", "The request could not be processed."),
    429: ("throttled", "Too many requests; try again shortly."),
    500: ("server_error", "Something went wrong on our side; nothing was changed."),
    502: ("bad_gateway", "A service behind this one failed."),
    503: ("unavailable", "Temporarily unavailable; try again shortly."),
    504: ("timeout", "A service behind this one took too long."),
}


def is_api_path(path: str) -> bool:
    return bool(API_PATH.match(path))


# A 500 or 503 to a request that writes: it may have done its work before the failure.
SENT_DETAIL = {
    500: "Something went wrong on our side, and the request may have gone through before it did: send the same "
    "request again (an order with the same Idempotency-Key) to learn what became of it.",
    503: "Temporarily unavailable, and the request may have gone through before it was: send the same request "
    "again shortly (an order with the same Idempotency-Key) to learn what became of it.",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _failure_json(request, status: int):
    detail = ""
    if request.method not in SAFE_METHODS:
        detail = SENT_DETAIL[status]
        if request.path.startswith("/legacy-api/"):
            # Its orders are keyed by the body's `reference`, not by a header.
            detail = detail.replace("an order with the same Idempotency-Key", "an order with the same reference")
    return error_json(status, detail=detail)


def error_json(status: int, *, detail: str = "", fields: dict[str, list[str]] | None = None, error: str = ""):
    code, default = ERROR_CODES.get(status, ("error", "The request failed."))
    body: dict = {"error": error or code, "detail": detail or default}
    if fields:
        body["fields"] = fields
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import redis

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a requirement
        pass
    return tuple(errors)


UNAVAILABLE = _unavailable_errors()


def _null_field(value, path: str = "") -> str | None:
    """The dotted name of the first string (key or value) holding a null character."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return name.replace("\x00", "")
            found = _null_field(item, name)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _null_field(item, f"{path}[{index}]" if path else f"[{index}]")
            if found:
                return found
    return None


class ApiErrorMiddleware:
    """Null characters (in the address, a header or a JSON body), and form data declared in a
    charset other than UTF-8, are refused before anything reads them (PostgreSQL cannot store
    the one, nothing can encode what the other may decode to: both used to come back as a 500);
    under the API prefixes, errors are answered as JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = is_api_path(request.path)
        refusal = (
            self._length_refusal(request, api)
            or self._charset_refusal(request, api)
            or self._null_refusal(request, api)
        )
        if refusal is not None:
            return refusal
        response = self.get_response(request)
        if api and response.status_code >= 400 and not getattr(response, "detail_given", False):
            # A view that knows its JSON answer has a `detail` says so: most of a sale's 409s.
            return _with_detail(response) if _is_json(response) else _as_json(response)
        return response

    def _length_refusal(self, request, api: bool):
        # A Content-Length that is no number: Django reads it with int() as it reads the body (a
        # ValueError, a 500), and runserver passes any text on.
        try:
            int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _bad_request(request, api, {"Content-Length": [LENGTH_MESSAGE]}, detail=LENGTH_MESSAGE)
        return None

    def _charset_refusal(self, request, api: bool):
        charset = request.content_params.get("charset") if request.content_type in FORM_TYPES else None
        if charset and charset.strip().lower() not in FORM_CHARSETS:
            return _bad_request(request, api, {"body": [CHARSET_MESSAGE]}, detail=CHARSET_MESSAGE)
        return None

    def _null_refusal(self, request, api: bool):
        if "\x00" in request.path or "\x00" in request.path_info:
            return _bad_request(request, api, {"path": [NULL_MESSAGE]})
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            names = [name for name, values in request.GET.lists() if any("\x00" in v for v in values)]
            names += [name for name in request.GET if "\x00" in name]
            return _bad_request(request, api, {(names[0] if names else "query"): [NULL_MESSAGE]})
        # A header's too: the session's key, an Idempotency-Key, django-axes' user agent are
        # looked up or stored as they came (a session cookie holding one was a 500 on every page).
        # One pass over the environ's text (a µs); the header is named only for a request that has one.
        if "\x00" in "".join([value for value in request.META.values() if type(value) is str]):
            name = next(name for name, value in request.META.items() if type(value) is str and "\x00" in value)
            return _bad_request(request, api, {name.removeprefix("HTTP_").replace("_", "-").title(): [NULL_MESSAGE]})
        if api and request.content_type == "application/json":
            try:
                body = request.body
            except RequestDataTooBig:
                return error_json(413, detail=_too_large(), fields={"body": [_too_large()]})
            # A null can only reach a JSON string escaped: parse only the bodies that have one.
            if b"\\u0000" in body:
                try:
                    field = _null_field(json.loads(body))
                except (ValueError, RecursionError):
                    field = None
                if field:
                    return error_json(400, error="invalid", detail=NULL_MESSAGE, fields={field: [NULL_MESSAGE]})
        return None

    def process_exception(self, request, exception):
        if not is_api_path(request.path):
            # The database or the cache away (a restart, a failover) is a moment's wait, not a
            # fault of the page: said so, 503 with Retry-After, rather than "something went wrong".
            return self._unavailable_page(request, exception) if isinstance(exception, UNAVAILABLE) else None
        if isinstance(exception, RequestDataTooBig):
            return error_json(413, detail=_too_large(), fields={"body": [_too_large()]})
        if isinstance(exception, Http404):
            return error_json(404)
        if isinstance(exception, PermissionDenied):
            return error_json(403)
        if isinstance(exception, BadRequest | SuspiciousOperation):
            return error_json(400)
        if isinstance(exception, UNAVAILABLE):
            logger.warning("%s %s: a backing service is away: %s", request.method, request.path, exception)
            response = _failure_json(request, 503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        logger.error("%s %s failed", request.method, request.path, exc_info=exception)
        return _failure_json(request, 500)

    def _unavailable_page(self, request, exception) -> HttpResponse:
        logger.warning("%s %s: a backing service is away: %s", request.method, request.path, exception)
        response = _page(request, "503.html", 503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response


def _too_large() -> str:
    return f"At most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


def _with_detail(response) -> HttpResponse:
    """A JSON error some view answered without a `detail` gets the status's own (a view that
    knows its answer has one says so, `response.detail_given = True`, and is not sent here)."""
    if getattr(response, "streaming", False) or len(response.content) > 65536:
        return response
    try:
        body = json.loads(response.content)
    except ValueError:
        return response
    if not isinstance(body, dict) or "detail" in body:
        return response
    code, default = ERROR_CODES.get(response.status_code, ("error", "The request failed."))
    body = {"error": body.pop("error", code), "detail": default, **body}
    response.content = json.dumps(body).encode()
    if response.has_header("Content-Length"):  # set by CommonMiddleware for the old body
        response["Content-Length"] = str(len(response.content))
    return response


def _as_json(response) -> HttpResponse:
    converted = error_json(response.status_code)
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Edge-Route"):
        if header in response:
            converted[header] = response[header]
    return converted


def _bad_request(request, api: bool, fields: dict[str, list[str]], *, detail: str = NULL_MESSAGE) -> HttpResponse:
    if api:
        return error_json(400, error="invalid", detail=detail, fields=fields)
    return _page(request, "400.html", 400)


# --- Pages and handlers -------------------------------------------------------------------
FALLBACK_PAGE = "<!doctype html><title>{status}</title><h1>{status}</h1><p>{text}</p>"
# The deployments that serve the storefront's pages (the all-in-one server, the monolith).
STOREFRONT_URLCONFS = {"config.urls", "config.urls_monolith"}


def _page(request, template: str, status: int) -> HttpResponse:
    """The shop's error page; plain text if even that cannot render (a 500 must not fail)."""
    context = {
        "request_path": request.path,
        "nav_categories": _header_categories(request, status),
        # A form sent (an order, a card) may have done its work before the failure: "nothing was
        # changed" would be false after a card was authorised.
        "sent": request.method not in SAFE_METHODS,
    }
    try:
        body = loader.get_template(template).render(context)
    except Exception:
        logger.exception("could not render %s", template)
        body = FALLBACK_PAGE.format(status=status, text=ERROR_CODES.get(status, ("", ""))[1])
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def _header_categories(request, status: int) -> list:
    """The header's categories on the storefront's own 4xx pages, as its other pages list them.
    No categories for a 500, which must not depend on the database or the cache, nor where the
    hot path or the legacy API answers: they do not read the storefront's tables for an error
    page (the header then links the whole shop)."""
    urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
    if status >= 500 or urlconf not in STOREFRONT_URLCONFS:
        return []
    try:
        return nav_categories()
    except Exception:  # the page is shown without them
        logger.warning("could not read the categories for a %s page", status, exc_info=True)
        return []


def handler400(request, exception=None):
    return error_json(400) if is_api_path(request.path) else _page(request, "400.html", 400)


def handler403(request, exception=None):
    return error_json(403) if is_api_path(request.path) else _page(request, "403.html", 403)


def handler404(request, exception=None):
    return error_json(404) if is_api_path(request.path) else _page(request, "404.html", 404)


def handler500(request):
    return _failure_json(request, 500) if is_api_path(request.path) else _page(request, "500.html", 500)


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: JSON under the API prefixes; elsewhere the shop's page telling the
    shopper to reload the form (Django's own page, with its reason, while DEBUG is on)."""
    if is_api_path(request.path):
        return error_json(
            403,
            error="csrf_failed",
            detail="The CSRF check failed: send the X-CSRFToken header with the token from the page.",
        )
    if settings.DEBUG:
        return django_csrf.csrf_failure(request, reason=reason)
    return _page(request, "403_csrf.html", 403)
