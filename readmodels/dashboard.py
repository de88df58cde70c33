"""The merchant's live sale dashboard: every figure of the sale as it happens, in one JSON
document that the page renders at once and then fetches again every few seconds."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from events.consumers import consumer_names
from events.models import DeadLetter as ConsumerDeadLetter
from events.selectors import consumers_state
from orders.models import DeadLetter as OrderDeadLetter
from orders.models import HotOrder, LegacySlot, OrderStage, OrderStatus, SaleAllocation
from orders.selectors import broker_queue_depth
from readmodels import selectors
from readmodels.answers import answers_recent
from readmodels.models import Tally

REFRESH_SECONDS = 3
ANSWER_SECONDS = 30
SALES_MINUTES = 30


def _queue() -> dict:
    now = timezone.now()
    by_stage = dict(HotOrder.objects.filter(status=OrderStatus.PROCESSING).values_list("stage").annotate(n=Count("pk")))
    finished = HotOrder.objects.filter(completed_at__gte=now - timedelta(seconds=60)).aggregate(
        placed=Count("pk", filter=Q(status=OrderStatus.COMPLETE)),
        failed=Count("pk", filter=Q(status=OrderStatus.FAILED)),
    )
    capacity = min(settings.ORDERS_LEGACY_CONCURRENCY, settings.LEGACY_CAPACITY)
    return {
        "depth": by_stage.get(OrderStage.QUEUED, 0),
        "in_progress": by_stage.get(OrderStage.VALIDATING, 0),
        "broker_depth": broker_queue_depth(),
        # Orders that became final in the last minute, per second.
        "drain_per_second": round((finished["placed"] + finished["failed"]) / 60, 2),
        "placed_last_minute": finished["placed"],
        "failed_last_minute": finished["failed"],
        "legacy_in_flight": LegacySlot.objects.filter(number__lte=capacity, lease_until__gt=now).count(),
        "legacy_capacity": capacity,
    }


def _sales() -> list[dict]:
    rows = []
    for allocation in SaleAllocation.objects.select_related("product").filter(is_hot=True).order_by("product__title"):
        view = selectors.inventory_figures(product=allocation.product.slug) or {}
        rows.append(
            {
                "product": allocation.product.slug,
                "title": allocation.product.title,
                "allocated": allocation.allocated,
                "reserved": allocation.reserved,
                "sold": allocation.sold,
                "remaining": allocation.remaining,
                "view_remaining": view.get("remaining"),
                "available": view.get("available"),
            }
        )
    return rows


def _dead_letters() -> dict:
    orders = OrderDeadLetter.objects.filter(redriven_at__isnull=True).count()
    consumers = dict(
        ConsumerDeadLetter.objects.filter(redriven_at__isnull=True).values_list("consumer").annotate(n=Count("pk"))
    )
    return {
        "orders": orders,
        "orders_url": reverse("admin:orders_deadletter_changelist") + "?redriven_at__isempty=1",
        "consumers": consumers,
        "consumers_url": reverse("admin:events_deadletter_changelist") + "?redriven_at__isempty=1",
    }


def _money(cents: int | None) -> str:
    cents = int(cents or 0)
    return f"${cents // 100:,}.{cents % 100:02d}"


def _minutes(now) -> list[dict]:
    """The last SALES_MINUTES minutes, each with its orders, units and revenue (zero included)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=SALES_MINUTES - 1)
    found = {row["minute"]: row for row in selectors.sales_per_minute(since=start)}
    minutes = []
    for index in range(SALES_MINUTES):
        minute = start + timedelta(minutes=index)
        row = found.get(minute, {})
        cents = row.get("revenue_cents") or 0
        minutes.append(
            {
                "minute": minute.isoformat(),
                "orders": row.get("orders") or 0,
                "units": row.get("units") or 0,
                "revenue_cents": cents,
                "revenue": _money(cents),
            }
        )
    return minutes


def dashboard_data() -> dict:
    now = timezone.now()
    sales = _sales()
    answers = answers_recent(products=[s["product"] for s in sales], seconds=ANSWER_SECONDS, now=time.time())
    per_minute = _minutes(now)
    totals = selectors.sales_totals()
    return {
        "generated_at": now.isoformat(),
        "refresh_seconds": REFRESH_SECONDS,
        "sales": sales,
        "answers": answers,
        "queue": _queue(),
        "sales_per_minute": per_minute,
        "totals": {**totals, "revenue": _money(totals["revenue_cents"])},
        "dead_letters": _dead_letters(),
        "low_stock": selectors.low_stock(),
        "reorders": [
            {
                "reference": po.reference,
                "product": po.product.slug,
                "supplier": po.supplier.name if po.supplier else None,
                "quantity": po.quantity,
                "status": po.status,
                "url": reverse("admin:readmodels_purchaseorder_change", args=[po.pk]),
            }
            for po in selectors.purchase_orders_open()
        ],
        "top_sellers": {
            kind: [
                {"key": t.key, "orders": t.orders, "units": t.units, "revenue": _money(t.revenue_cents)}
                for t in selectors.tallies_top(kind=kind)
            ]
            for kind in (Tally.Kind.SUPPLIER, Tally.Kind.CATEGORY)
        },
        "consumers": [state.as_dict() for state in consumers_state(consumers=consumer_names())],
    }
