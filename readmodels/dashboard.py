"""The merchant's live sale dashboard: every figure of the sale as it happens, in one JSON
document that the page renders at once and then fetches again every few seconds.

While a merchant watches, the workers make the document every few seconds (readmodels.runner)
and keep it in the cache: a fetch is then one cache read in the shop's web processes, which
serve the shoppers too. Without a fresh one (no worker, or none has made it yet) the fetch
makes the document itself, as before.

    dashboard_data() -> dict               the figures, made now
    dashboard_body(now=None) -> bytes      the JSON for a fetch: the workers' if fresh, else made now
    dashboard_snapshot_refresh(now=None)   in a worker: makes it again when watched and due
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from events.consumers import consumer_names
from events.models import DeadLetter as ConsumerDeadLetter
from events.selectors import consumers_state
from orders.broker_depth import broker_queue_depth
from orders.models import DeadLetter as OrderDeadLetter
from orders.models import HotOrder, LegacySlot, OrderStage, OrderStatus, SaleAllocation
from readmodels import selectors
from readmodels.answers import answers_recent
from readmodels.models import Tally

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 3
# A fetch that finds the workers' document older than this makes its own (a worker squeezed
# by a stampede may be late by a refresh or so).
SNAPSHOT_FRESH_SECONDS = 2 * REFRESH_SECONDS
# A worker makes it again once it is this old, so that a fetch every REFRESH_SECONDS finds it fresh.
SNAPSHOT_DUE_SECONDS = REFRESH_SECONDS - 1
# The workers make it only while somebody fetched it within this many seconds.
WATCH_SECONDS = 30
SNAPSHOT_KEY, SNAPSHOT_AT_KEY = "readmodels:dashboard:body", "readmodels:dashboard:made-at"
WATCHED_KEY, MAKER_KEY = "readmodels:dashboard:watched", "readmodels:dashboard:maker"
# The admin's paths are the same in the monolith and the all-in-one server; a worker may run
# with another deployment's URLconf.
ADMIN_URLCONF = "config.urls_monolith"
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
    unredriven = "?redriven_at__isempty=1"
    orders = OrderDeadLetter.objects.filter(redriven_at__isnull=True).count()
    consumers = dict(
        ConsumerDeadLetter.objects.filter(redriven_at__isnull=True).values_list("consumer").annotate(n=Count("pk"))
    )
    return {
        "orders": orders,
        "orders_url": reverse("admin:orders_deadletter_changelist", urlconf=ADMIN_URLCONF) + unredriven,
        "consumers": consumers,
        "consumers_url": reverse("admin:events_deadletter_changelist", urlconf=ADMIN_URLCONF) + unredriven,
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
                "title": po.product.title,
                "supplier": po.supplier.name if po.supplier else None,
                "quantity": po.quantity,
                "status": po.status,
                "url": reverse("admin:readmodels_purchaseorder_change", args=[po.pk], urlconf=ADMIN_URLCONF),
            }
            for po in selectors.purchase_orders_open()
        ],
        "top_sellers": _top_sellers(),
        "consumers": [state.as_dict() for state in consumers_state(consumers=consumer_names())],
    }


def _top_sellers() -> dict[str, list[dict]]:
    """The leaderboards, each row with the name a merchant knows it by: a supplier's tally is
    kept under its name, a category's under its slug (its name read in one query)."""
    tallies = {kind: selectors.tallies_top(kind=kind) for kind in (Tally.Kind.SUPPLIER, Tally.Kind.CATEGORY)}
    slugs = [t.key for t in tallies[Tally.Kind.CATEGORY]]
    names = {Tally.Kind.SUPPLIER: {}, Tally.Kind.CATEGORY: selectors.category_names(slugs=slugs) if slugs else {}}
    return {
        kind: [
            {
                "key": t.key,
                "name": names[kind].get(t.key, t.key),
                "orders": t.orders,
                "units": t.units,
                "revenue": _money(t.revenue_cents),
            }
            for t in rows
        ]
        for kind, rows in tallies.items()
    }


def _body() -> bytes:
    return json.dumps(dashboard_data(), cls=DjangoJSONEncoder).encode()


def dashboard_body(*, now: float | None = None) -> bytes:
    """The JSON document for a fetch: the one the workers made, if it is at most
    SNAPSHOT_FRESH_SECONDS old, else one made here. Either way the fetch tells the workers
    that somebody watches. The caller checks the permission."""
    now = time.time() if now is None else now
    try:
        cache.set(WATCHED_KEY, now, WATCH_SECONDS)
        found = cache.get_many([SNAPSHOT_KEY, SNAPSHOT_AT_KEY])
    except Exception:  # the cache is away: the figures can still be made here
        logger.warning("dashboard snapshot not read", exc_info=True)
        found = {}
    made_at, body = found.get(SNAPSHOT_AT_KEY), found.get(SNAPSHOT_KEY)
    if body is not None and made_at is not None and 0 <= now - made_at <= SNAPSHOT_FRESH_SECONDS:
        return body
    return _body()


def dashboard_snapshot_refresh(*, now: float | None = None) -> bool:
    """Makes the document and keeps it in the cache when somebody watched within
    WATCH_SECONDS and the kept one is SNAPSHOT_DUE_SECONDS old or missing; one worker at a
    time (MAKER_KEY). Returns whether it made one."""
    now = time.time() if now is None else now
    found = cache.get_many([WATCHED_KEY, SNAPSHOT_AT_KEY])
    if WATCHED_KEY not in found:
        return False
    made_at = found.get(SNAPSHOT_AT_KEY)
    if made_at is not None and 0 <= now - made_at < SNAPSHOT_DUE_SECONDS:
        return False
    if not cache.add(MAKER_KEY, now, SNAPSHOT_DUE_SECONDS):
        return False
    try:
        body = _body()
        # Stamped with when it was begun: its figures are at least that fresh.
        cache.set_many({SNAPSHOT_KEY: body, SNAPSHOT_AT_KEY: now}, WATCH_SECONDS)
    finally:
        cache.delete(MAKER_KEY)
    return True
