"""The legacy order API over HTTP: thin views that validate, call the services and map their answers."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, status
from rest_framework.response import Response

from legacy_api import capacity
from legacy_api.api_base import (
    BoundedJSONParser,
    IsMerchant,
    LegacyApiView,
    MayPlaceOrders,
    PayloadTooLarge,
    declared_length,
    error_fields,
    errors,
    legacy_exception_handler,
    method_not_allowed,
    no_store,
)
from legacy_api.payments import payment_figures
from legacy_api.references import LineRequest, order_fingerprint, order_lookup, order_replay
from legacy_api.selectors import order_placed_get
from legacy_api.serializers import (
    ErrorSerializer,
    OrderLookupQuerySerializer,
    OrderRequestSerializer,
    OrderSerializer,
    StatsSerializer,
)
from legacy_api.services import order_place

__all__ = ["BoundedJSONParser", "PayloadTooLarge", "error_fields", "legacy_exception_handler", "ping"]


# As every view of the API, it is not a form's target: a method it does not take is a 405, never a CSRF 403.
@csrf_exempt
@no_store
def ping(request: HttpRequest) -> HttpResponse:
    """A health check: it reads and changes nothing, so it takes GET and HEAD only."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, allowed=("GET", "HEAD"))
    return HttpResponse("PONG", content_type="text/plain")


class OrderCollectionApi(LegacyApiView):
    """Orders placed by the callers that sell; the merchant's token is refused before a byte is read."""

    permission_classes = [MayPlaceOrders]

    @extend_schema(
        operation_id="order_place",
        description="Any caller but the merchant places orders; an order naming a hold draws on it only for "
        "the caller that took the hold.",
        request=OrderRequestSerializer,
        responses={
            201: OpenApiResponse(OrderSerializer, description="Placed."),
            200: OpenApiResponse(OrderSerializer, description="Already placed under this reference and body."),
            402: OpenApiResponse(ErrorSerializer, description="Card declined."),
            408: OpenApiResponse(
                ErrorSerializer,
                description="expired: the request arrived after its place_before; nothing was placed.",
            ),
            403: OpenApiResponse(ErrorSerializer, description="forbidden: the merchant's token places no orders."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="out_of_stock (with product and available): a product (or the named hold) is short; "
                "in_progress: another request works on this reference, retry after Retry-After.",
            ),
            422: OpenApiResponse(ErrorSerializer, description="reference_reused: the reference has another body."),
            503: OpenApiResponse(
                ErrorSerializer,
                description="Over capacity (over_capacity), or its capacity gate unreachable (unavailable): "
                "retry after Retry-After seconds.",
            ),
            **errors(400, 401, 405, 413, 415),
        },
    )
    def post(self, request):
        with capacity.in_flight(caller=request.user.name):
            if declared_length(request) > (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or float("inf")):
                raise PayloadTooLarge  # refused before a byte of it is read
            serializer = OrderRequestSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            lines = [
                LineRequest(
                    product=line["product"], quantity=line["quantity"], unit_price_cents=line.get("unit_price_cents")
                )
                for line in data["lines"]
            ]
            fingerprint = order_fingerprint(
                customer_name=data["customer"]["name"],
                customer_email=data["customer"]["email"],
                lines=lines,
                card_number=data["payment"]["card_number"],
            )
            # A replay is answered before taking a slot or burning CPU.
            caller = request.user.name
            existing = order_replay(reference=data["reference"], fingerprint=fingerprint, caller=caller)
            if existing is not None:
                return Response(_order_data(existing, caller=caller), status=status.HTTP_200_OK)
            with capacity.slot(caller):
                order, created = order_place(
                    reference=data["reference"],
                    customer_name=data["customer"]["name"],
                    customer_email=data["customer"]["email"],
                    lines=lines,
                    card_number=data["payment"]["card_number"],
                    hold=data.get("hold"),
                    caller=caller,
                    place_before=data.get("place_before"),
                )
        return Response(
            _order_data(order, caller=caller), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def _order_data(order, *, caller: str) -> dict:
    return OrderSerializer(order, context={"caller": caller}).data


class OrderLookupApi(LegacyApiView):
    """An order found by its reference, for the callers that place orders: orders are never listed."""

    permission_classes = [MayPlaceOrders]

    @extend_schema(
        operation_id="order_lookup",
        description="Whether the caller has an order under a reference, placing nothing: the order it placed "
        "(or sent again with the very body that placed it), or none; another caller's order is not listed, as "
        "an order that does not exist. A caller asks before it gives up on an order whose answer it lost.",
        parameters=[OrderLookupQuerySerializer],
        responses={
            200: OpenApiResponse(
                inline_serializer("OrderLookup", fields={"results": OrderSerializer(many=True)}),
                description="The caller's order under the reference, or an empty list.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="in_progress: a request of the caller's still works on the reference, retry after "
                "Retry-After.",
            ),
            **errors(400, 401, 403, 405),
        },
    )
    def get(self, request):
        query = OrderLookupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        caller = request.user.name
        order = order_lookup(reference=query.validated_data["reference"], caller=caller)
        return Response({"results": [] if order is None else [_order_data(order, caller=caller)]})


class OrderDetailApi(LegacyApiView):
    @extend_schema(
        operation_id="order_get",
        description="An order its caller placed (or sent again with the very body that placed it); any other "
        "is 404, as an order that does not exist.",
        responses={200: OrderSerializer, **errors(401, 404, 405)},
    )
    def get(self, request, order_id: int):
        order = order_placed_get(order_id=order_id, caller=request.user.name)
        if order is None:
            raise exceptions.NotFound
        return Response(_order_data(order, caller=request.user.name))


def _figures() -> dict:
    return {**capacity.stats(), **payment_figures()}


class StatsApi(LegacyApiView):
    permission_classes = [IsMerchant]

    @extend_schema(operation_id="stats_get", responses={200: StatsSerializer, **errors(401, 403, 405)})
    def get(self, request):
        return Response(_figures())


class StatsResetApi(LegacyApiView):
    permission_classes = [IsMerchant]

    @extend_schema(operation_id="stats_reset", request=None, responses={200: StatsSerializer, **errors(401, 403, 405)})
    def post(self, request):
        capacity.stats_reset()
        return Response(_figures())
