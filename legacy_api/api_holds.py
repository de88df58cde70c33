"""Holds and stock of record over HTTP: the hot path keeps a sale's units aside, lists, resizes and
releases its holds; callers read stock, and the merchant records goods received.

Every hold endpoint is the hot path's token's alone (IsHotPath): any other caller is 403 there. A hold
is still kept per caller (it answers to the caller that took it, and an order naming another
caller's hold is 400 on `hold`), so a caller given holds later never sees the hot path's."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, status
from rest_framework.response import Response

from legacy_api.api_base import IsHotPath, IsMerchant, LegacyApiView, errors
from legacy_api.holds import hold_create, hold_release, hold_resize
from legacy_api.receipts import stock_receive
from legacy_api.selectors import HOLDS_LISTED_MAX, hold_get, holds_list, stock_get
from legacy_api.serializers import (
    ErrorSerializer,
    HoldListQuerySerializer,
    HoldRequestSerializer,
    HoldResizeSerializer,
    HoldSerializer,
    OutOfStockSerializer,
    StockReceiptRequestSerializer,
    StockSerializer,
)

_SHORT = OpenApiResponse(OutOfStockSerializer, description="out_of_stock: fewer units available than asked.")


class HoldCollectionApi(LegacyApiView):
    permission_classes = [IsHotPath]

    @extend_schema(
        operation_id="hold_list",
        description=f"The caller's own holds, oldest first, at most {HOLDS_LISTED_MAX}: another caller's are "
        "never listed. A caller finds with it the holds it took but lost track of (an answer that never came).",
        parameters=[HoldListQuerySerializer],
        responses={
            200: OpenApiResponse(
                inline_serializer("HoldList", fields={"results": HoldSerializer(many=True)}),
                description=f"At most {HOLDS_LISTED_MAX} holds, oldest first.",
            ),
            **errors(400, 401, 403, 405),
        },
    )
    def get(self, request):
        query = HoldListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        holds = holds_list(caller=request.user.name, **query.validated_data)
        return Response({"results": HoldSerializer(holds, many=True).data})

    @extend_schema(
        operation_id="hold_create",
        request=HoldRequestSerializer,
        responses={
            201: OpenApiResponse(HoldSerializer, description="Held."),
            200: OpenApiResponse(HoldSerializer, description="Already held under this reference and body."),
            409: _SHORT,
            422: OpenApiResponse(ErrorSerializer, description="reference_reused: the reference has another body."),
            **errors(400, 401, 403, 405, 413, 415),
        },
    )
    def post(self, request):
        serializer = HoldRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold, created = hold_create(**serializer.validated_data, caller=request.user.name)
        return Response(HoldSerializer(hold).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class HoldDetailApi(LegacyApiView):
    permission_classes = [IsHotPath]

    @extend_schema(operation_id="hold_get", responses={200: HoldSerializer, **errors(401, 403, 404, 405)})
    def get(self, request, reference: str):
        hold = hold_get(reference=reference, caller=request.user.name)
        if hold is None:
            raise exceptions.NotFound
        return Response(HoldSerializer(hold).data)

    @extend_schema(
        operation_id="hold_resize",
        request=HoldResizeSerializer,
        responses={
            200: HoldSerializer,
            # hold_released carries no product: the shape both errors share.
            409: OpenApiResponse(
                ErrorSerializer, description="out_of_stock (with product and available), or hold_released."
            ),
            **errors(400, 401, 403, 404, 405, 415),
        },
    )
    def patch(self, request, reference: str):
        serializer = HoldResizeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = hold_resize(reference=reference, **serializer.validated_data, caller=request.user.name)
        return Response(HoldSerializer(hold).data)

    @extend_schema(
        operation_id="hold_release",
        request=None,
        responses={200: OpenApiResponse(HoldSerializer, description="Released (again)."), **errors(401, 403, 404, 405)},
    )
    def delete(self, request, reference: str):
        return Response(HoldSerializer(hold_release(reference=reference, caller=request.user.name)).data)


class StockApi(LegacyApiView):
    @extend_schema(operation_id="stock_get", responses={200: StockSerializer, **errors(401, 404, 405)})
    def get(self, request, product: str):
        figures = stock_get(product=product)
        if figures is None:
            raise exceptions.NotFound
        return Response(StockSerializer(figures).data)


class StockReceiptApi(LegacyApiView):
    """Goods received (a purchase order delivered): the merchant's alone."""

    permission_classes = [IsMerchant]

    @extend_schema(
        operation_id="stock_receive",
        request=StockReceiptRequestSerializer,
        responses={
            201: OpenApiResponse(StockSerializer, description="Received: the stock after."),
            200: OpenApiResponse(StockSerializer, description="Already received under this reference."),
            422: OpenApiResponse(ErrorSerializer, description="reference_reused: the reference has another body."),
            404: OpenApiResponse(ErrorSerializer, description="not_found: the path names no product (not a slug)."),
            **errors(400, 401, 403, 405, 415),
        },
    )
    def post(self, request, product: str):
        serializer = StockReceiptRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        figures, created = stock_receive(product=product, **serializer.validated_data)
        return Response(
            StockSerializer(figures).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
