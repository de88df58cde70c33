"""What every view of the legacy API shares: JSON in and out, bearer-token callers, and every
error as {"error", "detail"?, "fields"?} with its status code."""

from __future__ import annotations

import functools
import io

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import authentication, exceptions, permissions, status
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from legacy_api import capacity
from legacy_api.exceptions import (
    CardDeclined,
    Expired,
    HoldNotFound,
    HoldReleased,
    InProgress,
    InvalidOrder,
    OutOfStock,
    ReferenceReused,
)
from legacy_api.serializers import ErrorSerializer
from legacy_api.tokens import HOTPATH, MERCHANT, ORDER_CALLERS, token_caller


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class BoundedJSONParser(JSONParser):
    """JSON, read no further than DATA_UPLOAD_MAX_MEMORY_SIZE, whatever Content-Length says."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # nested deeper than the JSON decoder goes: not an order
            raise ParseError("JSON nested too deeply.")


class JSONOnly(DefaultContentNegotiation):
    """The API speaks JSON only, so it answers JSON whatever the client says it accepts, and
    reads a body only when it says it is JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        # The type a body names, not one it matches: DRF took a pattern sent as the Content-Type
        # (`*/*`, `application/*`) for the JSON parser's, and placed the order it carried.
        sent = request.content_type.split(";", 1)[0].strip().lower()
        return next((parser for parser in parsers if parser.media_type == sent), None)


class Caller:
    """The authenticated caller: a name taken from its token (storefront, hotpath, merchant)."""

    is_authenticated = True

    def __init__(self, name: str):
        self.name = name

    def __str__(self) -> str:
        return self.name


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Send Authorization: Bearer <token>.")
        caller = token_caller(token=token.strip())
        if caller is None:
            raise exceptions.AuthenticationFailed("The token is unknown or revoked.")
        return Caller(caller), token

    def authenticate_header(self, request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "legacy_api.api_base.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A caller's token (manage.py legacy_api_token)."}


class IsCaller(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Caller)


class IsMerchant(permissions.BasePermission):
    """The merchant's own calls: the service's figures and goods received into stock."""

    message = "Only the merchant's token may do this: read or reset the figures, or receive stock."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Caller) and request.user.name == MERCHANT


class IsHotPath(permissions.BasePermission):
    """Holds are the hot path's: it takes a sale's allocation aside and draws its orders on it.
    No other caller needs one, and a hold keeps its units from every channel."""

    message = "Only the hot path's token may take, list, read, resize or release holds."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Caller) and request.user.name == HOTPATH


class MayPlaceOrders(permissions.BasePermission):
    """Orders are placed by the callers that sell (tokens.ORDER_CALLERS), named one by one: the
    merchant's token is for the figures, and a leaked one must not authorise cards or take
    stock; a caller added later places none until it is named there."""

    message = f"Only these callers' tokens may place orders: {', '.join(ORDER_CALLERS)}."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Caller) and request.user.name in ORDER_CALLERS


def error_fields(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"customer.email": [...], "lines.0.quantity": [...]}."""
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = path if key == api_settings.NON_FIELD_ERRORS_KEY else f"{path}.{key}".lstrip(".")
            for name, messages in error_fields(value, child).items():
                fields.setdefault(name, []).extend(messages)
    elif isinstance(detail, list) and all(isinstance(item, str) for item in detail):
        if detail:
            fields[path or "body"] = [str(item) for item in detail]
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            fields.update(error_fields(item, f"{path}.{index}".lstrip(".")))
    else:
        fields[path or "body"] = [str(detail)]
    return fields


def legacy_exception_handler(exc, context):
    """Every error as JSON naming the field; domain exceptions mapped to their status codes."""
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.ValidationError):
        status_code, body = 400, {"error": "invalid", "fields": error_fields(exc.detail)}
    elif isinstance(exc, InvalidOrder):
        status_code, body = 400, {"error": "invalid", "fields": exc.fields}
    elif isinstance(exc, exceptions.ParseError):
        status_code, body = 400, {"error": "invalid", "fields": {"body": [str(exc.detail)]}}
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        status_code, body = 401, {"error": "unauthenticated", "detail": str(exc.detail)}
        headers["WWW-Authenticate"] = BearerTokenAuthentication.keyword
    elif isinstance(exc, exceptions.PermissionDenied):
        status_code, body = 403, {"error": "forbidden", "detail": str(exc.detail)}
    elif isinstance(exc, PayloadTooLarge):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        status_code, body = 413, {"error": "too_large", "fields": {"body": [f"At most {limit} bytes."]}}
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        status_code = 415
        body = {"error": "unsupported_media_type", "fields": {"content_type": ["Send application/json."]}}
    elif isinstance(exc, OutOfStock):
        status_code = 409
        body = {
            "error": "out_of_stock",
            "product": exc.product,
            "available": exc.available,
            "fields": {exc.field: [f"Only {exc.available} of {exc.product} in stock."]},
        }
    elif isinstance(exc, InProgress):
        status_code, body = 409, {"error": "in_progress", "detail": "This reference is being worked on; retry."}
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Expired):
        status_code = 408
        # Its own time beside it: a caller told "expired" while it still waited has a clock
        # behind this one's, which the caller logs.
        body = {
            "error": "expired",
            "fields": {"place_before": ["Passed before the request arrived."]},
            "now": timezone.now().isoformat(),
        }
    elif isinstance(exc, HoldReleased):
        status_code, body = 409, {"error": "hold_released", "detail": f"The hold {exc.reference!r} is released."}
    elif isinstance(exc, ReferenceReused):
        status_code = 422
        body = {
            "error": "reference_reused",
            "detail": "This reference was used with another body.",
            "fields": {"reference": ["Already used with another body."]},
        }
    elif isinstance(exc, CardDeclined):
        status_code = 402
        body = {"error": "card_declined", "reason": exc.reason, "fields": {"payment.card_number": ["Card declined."]}}
    elif isinstance(exc, capacity.OverCapacity):
        error = "unavailable" if isinstance(exc, capacity.GateUnavailable) else "over_capacity"
        status_code, body = 503, {"error": error}
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.NotFound | Http404 | HoldNotFound):
        status_code, body = 404, {"error": "not_found"}
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status_code, body = 405, {"error": "method_not_allowed", "fields": {"method": [str(exc.detail)]}}
    elif isinstance(exc, exceptions.APIException):
        status_code, body = exc.status_code, {"error": exc.default_code, "detail": str(exc.detail)}
    else:
        return None
    body = {"error": body["error"], "detail": body.get("detail") or _DETAILS.get(body["error"], ""), **body}
    return Response(body, status=status_code, headers=headers)


# What each error means, for a reader of the answer; the fields name what to change.
_DETAILS = {
    "invalid": "The request is not valid; see fields.",
    "too_large": "The request body is too large.",
    "unsupported_media_type": "Send application/json.",
    "out_of_stock": "Fewer units are available than asked for.",
    "card_declined": "The card was declined.",
    "expired": "The request arrived after its place_before; nothing was placed.",
    "over_capacity": "Every order slot is taken; retry after Retry-After seconds.",
    "unavailable": "The order service cannot take orders just now; retry after Retry-After seconds.",
    "not_found": "Nothing here.",
    "method_not_allowed": "This address does not take that method.",
}


class LegacyApiView(APIView):
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsCaller]

    def get_exception_handler(self):
        return legacy_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        # Every answer is one caller's: an order with its buyer's name, address and card's last
        # four digits, a hold, the figures. No cache on the way keeps one to serve again.
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "no-store")
        return response

    def permission_denied(self, request, message=None, code=None):
        # Whoever presented no token is told to authenticate, not that it is forbidden.
        if not isinstance(request.user, Caller):
            raise exceptions.NotAuthenticated("Send Authorization: Bearer <token>.")
        raise exceptions.PermissionDenied(detail=message, code=code)


# Whatever the method: a POST or DELETE to a path that names nothing is a 404 too, never a CSRF 403.
def no_store(view):
    """A plain view of the API (no LegacyApiView) answering with no-store too: a cache on the
    way would keep its health check's PONG for an API that is down, or its 404s."""

    @functools.wraps(view)
    def answered(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.setdefault("Cache-Control", "no-store")
        return response

    return answered


@csrf_exempt
@no_store
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any path under the API that names nothing (such as /orders/L00000001): JSON, as every error."""
    return JsonResponse({"error": "not_found", "detail": f"Nothing at {request.path}."}, status=404)


def method_not_allowed(request: HttpRequest, *, allowed: tuple[str, ...]) -> JsonResponse:
    """A plain view's 405, in the body and with the Allow header the API's other views answer it with."""
    detail = str(exceptions.MethodNotAllowed(request.method).detail)
    body = {"error": "method_not_allowed", "detail": _DETAILS["method_not_allowed"], "fields": {"method": [detail]}}
    response = JsonResponse(body, status=405)
    response["Allow"] = ", ".join(allowed)
    return response


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


def declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
