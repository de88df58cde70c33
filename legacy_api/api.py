"""The legacy order API over HTTP: thin views that validate, call the services and map their answers."""

from __future__ import annotations

import io

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, exception_handler

from legacy_api import capacity
from legacy_api.selectors import order_get, order_get_by_reference
from legacy_api.serializers import (
    ErrorSerializer,
    OrderRequestSerializer,
    OrderSerializer,
    OutOfStockSerializer,
    StatsSerializer,
)
from legacy_api.services import CardDeclined, InvalidOrder, LineRequest, OutOfStock, order_place


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("PONG", content_type="text/plain")


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
    """The API speaks JSON only, so it answers JSON whatever the client says it accepts."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


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
            "fields": {f"lines.{exc.line}.quantity": [f"Only {exc.available} of {exc.product} in stock."]},
        }
    elif isinstance(exc, CardDeclined):
        status_code = 402
        body = {"error": "card_declined", "reason": exc.reason, "fields": {"payment.card_number": ["Card declined."]}}
    elif isinstance(exc, capacity.OverCapacity):
        status_code, body = 503, {"error": "over_capacity"}
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.NotFound | Http404):
        status_code, body = 404, {"error": "not_found"}
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status_code, body = 405, {"error": "method_not_allowed", "fields": {"method": [str(exc.detail)]}}
    else:
        return exception_handler(exc, context)
    return Response(body, status=status_code, headers=headers)


class LegacyApiView(APIView):
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly
    authentication_classes: list = []
    permission_classes: list = []

    def get_exception_handler(self):
        return legacy_exception_handler


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


class OrderCollectionApi(LegacyApiView):
    @extend_schema(
        operation_id="order_place",
        request=OrderRequestSerializer,
        responses={
            201: OpenApiResponse(OrderSerializer, description="Placed."),
            200: OpenApiResponse(OrderSerializer, description="Already placed under this reference."),
            402: OpenApiResponse(ErrorSerializer, description="Card declined."),
            409: OpenApiResponse(OutOfStockSerializer, description="A product is short of stock."),
            503: OpenApiResponse(ErrorSerializer, description="Over capacity: retry after Retry-After seconds."),
            **_errors(400, 413, 415),
        },
    )
    def post(self, request):
        with capacity.in_flight(caller=request.headers.get("X-Legacy-Caller")):
            if _declared_length(request) > (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or float("inf")):
                raise PayloadTooLarge  # refused before a byte of it is read
            serializer = OrderRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            # A replay is answered before taking a slot or burning CPU.
            existing = order_get_by_reference(reference=data["reference"])
            if existing is not None:
                return Response(OrderSerializer(existing).data, status=status.HTTP_200_OK)
            with capacity.slot():
                order, created = order_place(
                    reference=data["reference"],
                    customer_name=data["customer"]["name"],
                    customer_email=data["customer"]["email"],
                    lines=[LineRequest(product=line["product"], quantity=line["quantity"]) for line in data["lines"]],
                    card_number=data["payment"]["card_number"],
                )
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class OrderDetailApi(LegacyApiView):
    @extend_schema(operation_id="order_get", responses={200: OrderSerializer, **_errors(404)})
    def get(self, request, order_id: int):
        order = order_get(order_id=order_id)
        if order is None:
            raise exceptions.NotFound
        return Response(OrderSerializer(order).data)


class StatsApi(LegacyApiView):
    @extend_schema(operation_id="stats_get", responses={200: StatsSerializer})
    def get(self, request):
        return Response(capacity.stats())


class StatsResetApi(LegacyApiView):
    @extend_schema(operation_id="stats_reset", request=None, responses={200: StatsSerializer})
    def post(self, request):
        return Response(capacity.stats_reset())
