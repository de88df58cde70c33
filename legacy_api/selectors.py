"""Reading orders of record."""

from __future__ import annotations

from legacy_api.models import Order


def order_get(*, order_id: int) -> Order | None:
    return Order.objects.prefetch_related("lines").filter(pk=order_id).first()


def order_get_by_reference(*, reference: str) -> Order | None:
    return Order.objects.prefetch_related("lines").filter(reference=reference).first()
