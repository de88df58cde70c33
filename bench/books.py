"""The books of a stampede, read from PostgreSQL and from the legacy API's own figures: every
accepted order placed exactly once, nothing oversold, every card authorised once for an order
the legacy API placed, each sale's hold in the stock of record keeping what the sale still
owes, and the unified log telling the same story as the books."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from collections import Counter

import urllib3

from bench.stack import Stack

# --- the legacy API over HTTP, as its callers see it ---------------------------------------


def legacy_call(stack: Stack, method: str, path: str, *, caller: str = "merchant") -> tuple[int, dict]:
    response = urllib3.PoolManager(retries=False, timeout=5.0).request(
        method, stack.url("legacy", f"/legacy-api{path}"), headers=stack.legacy_headers(caller)
    )
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {}
    return response.status, data if isinstance(data, dict) else {}


def legacy_stats(stack: Stack) -> dict:
    """The legacy API's figures (in flight, shed, authorisations): the merchant's to read."""
    status, data = legacy_call(stack, "GET", "/stats")
    if status != 200:
        raise RuntimeError(f"the legacy API's /stats answered {status}: {data}")
    return data


def legacy_reset(stack: Stack) -> None:
    status, data = legacy_call(stack, "POST", "/stats/reset")
    if status != 200:
        raise RuntimeError(f"the legacy API's /stats/reset answered {status}: {data}")


def legacy_held(stack: Stack, product: str) -> int | None:
    """Units of `product` the stock of record keeps in holds; None when it does not answer."""
    status, data = legacy_call(stack, "GET", f"/stock/{urllib.parse.quote(product, safe='')}", caller="hotpath")
    return int(data.get("held") or 0) if status == 200 else None


# --- checks shared by the stampede and the drills --------------------------------------------


def payments_check(stack: Stack) -> dict:
    """One live authorisation per order the legacy API placed, and none besides (see
    `payments_unmatched`). Authorisations are never reset, so the whole run counts."""
    from legacy_api.models import Order

    stats = legacy_stats(stack)
    placed = Order.objects.filter(status=Order.Status.PLACED).count()
    return {
        "authorisations": stats.get("authorisations"),
        "voids": stats.get("voids"),
        "declines": stats.get("declines"),
        "legacy_orders_placed": placed,
        "authorisations_unmatched": payments_unmatched(stats, placed),
    }


def payments_unmatched(stats: dict, placed: int) -> int:
    """Approved authorisations not voided, less the orders placed: a card authorised twice
    for one order, or for an order never placed and not voided, shows as a difference. An
    authorisation the legacy API voided when its order failed after it (the stock ran out
    meanwhile) is released, not charged: it is not a difference."""
    return (stats.get("authorisations") or 0) - (stats.get("voids") or 0) - placed


def hold_check(stack: Stack, product: str) -> dict:
    """Once the queue has drained, the sale's hold keeps exactly what the sale has not sold
    (allocated - sold): the hold and the sale agree (`hold_drift` 0)."""
    from orders.models import SaleAllocation

    sale = SaleAllocation.objects.get(product__slug=product)
    held = legacy_held(stack, product)
    owed = sale.allocated - sale.sold
    return {
        "held": held,
        "allocated_minus_sold": owed,
        "reserved_after_drain": sale.reserved,
        # An unreadable hold counts as drift: the check must not pass for want of an answer.
        "hold_drift": (held - owed) if held is not None else owed or 1,
    }


# --- the stampede's books --------------------------------------------------------------------


def key_units_sold(products: list[str]) -> int:
    """Units of these products the legacy API placed for buyers' keys (the hot path's orders,
    and the monolith's buy-now), over the whole run so far."""
    from django.db.models import Sum

    from legacy_api.models import OrderLine

    lines = OrderLine.objects.filter(product_slug__in=products, order__reference__startswith="key-")
    return lines.aggregate(units=Sum("quantity"))["units"] or 0


def legacy_orders_placed(since, until) -> int:
    """Every caller's orders the legacy API placed from `since` to `until`: the storefront's
    checkouts share its capacity with the workers, so over the drain's window this is how busy
    the shop kept it, where the drain counts the workers' orders alone."""
    from legacy_api.models import Order

    return Order.objects.filter(status=Order.Status.PLACED, created_at__gte=since, created_at__lte=until).count()


def drain_and_check(
    numbers: list[str], products: list[str], *, drain_timeout: float, stampede_end, units_before: int = 0
) -> dict:
    """Waits until every accepted order is final, then checks the books in PostgreSQL.
    `units_before`: what `key_units_sold` read before this stampede (an earlier round's sale)."""
    from django.db import connection
    from django.db.models import Count

    from legacy_api.models import Order, OrderLine
    from orders.models import HotOrder, OrderStatus, SaleAllocation
    from shop.models import Product

    started = time.monotonic()
    deadline = started + drain_timeout
    while time.monotonic() < deadline:
        pending = HotOrder.objects.filter(number__in=numbers, status=OrderStatus.PROCESSING).count()
        if pending == 0:
            break
        time.sleep(0.5)
    connection.close()
    orders = HotOrder.objects.filter(number__in=numbers)
    found = {o.number: o for o in orders}
    complete = [o for o in found.values() if o.status == OrderStatus.COMPLETE]
    lost = [n for n in numbers if n not in found or found[n].status != OrderStatus.COMPLETE]
    duplicate_answers = len(numbers) - len(set(numbers))
    legacy_per_ref = (
        OrderLine.objects.filter(product_slug__in=products, order__reference__startswith="key-")
        .values("order__reference")
        .annotate(n=Count("order_id", distinct=True))
        .filter(n__gt=1)
        .count()
    )
    legacy_refs = set(
        Order.objects.filter(reference__in=[o.reference for o in found.values()]).values_list("reference", flat=True)
    )
    oversold = 0
    for allocation in SaleAllocation.objects.filter(product__slug__in=products):
        oversold += max(0, allocation.sold + allocation.reserved - allocation.allocated)
    oversold += Product.objects.filter(stock__lt=0).count()
    # From the first order accepted to the last one placed the queue is never empty: the
    # workers should keep the legacy API as busy as it can be for that whole time.
    first = min((o.created_at for o in complete), default=None)
    last = max((o.completed_at for o in complete if o.completed_at), default=None)
    drain_window = (last - first).total_seconds() if first and last else 0.0
    legacy_placed = legacy_orders_placed(first, last) if first and last else 0
    after = [o for o in complete if o.completed_at and o.completed_at > stampede_end]
    sold_units = key_units_sold(products) - units_before
    return {
        **drain_phases([(o.created_at, o.completed_at) for o in complete if o.completed_at], stampede_end=stampede_end),
        "accepted": len(numbers),
        "complete": len(complete),
        "lost": len(lost),
        "lost_numbers": lost[:20],
        "duplicates": duplicate_answers + legacy_per_ref + max(0, sold_units - len(legacy_refs)),
        "legacy_orders_for_accepted": len(legacy_refs),
        "oversold": oversold,
        "drain_seconds": round(time.monotonic() - started, 2),
        "drain_window_seconds": round(drain_window, 2),
        "completed_after_stampede": len(after),
        "drain_rate": round(len(complete) / drain_window, 2) if drain_window else 0.0,
        "legacy_orders_in_drain_window": legacy_placed,
        "legacy_rate_all_callers": round(legacy_placed / drain_window, 2) if drain_window else 0.0,
    }


def drain_phases(orders: list[tuple], *, stampede_end) -> dict:
    """The drain's rate while the stampede's load lasted and after it ended, from each
    complete order's (accepted, completed) times: what the stampede's load takes from the drain.
    While it lasts, the window runs from the first order accepted to the load's end (or to the
    last order placed, if the queue emptied first); after it, from the load's end to the last
    order placed. A phase with no window reads None."""
    if not orders:
        return {"drain_rate_during_stampede": None, "drain_rate_after_stampede": None}
    first = min(accepted for accepted, _ in orders)
    last = max(completed for _, completed in orders)
    during = sum(1 for _, completed in orders if completed <= stampede_end)
    during_seconds = (min(last, stampede_end) - first).total_seconds()
    after_seconds = (last - stampede_end).total_seconds()
    return {
        "drain_rate_during_stampede": round(during / during_seconds, 2) if during_seconds > 0 else None,
        "drain_rate_after_stampede": round((len(orders) - during) / after_seconds, 2) if after_seconds > 0 else None,
        "drain_orders_during_stampede": during,
        "drain_seconds_during_stampede": round(max(0.0, during_seconds), 2),
        "drain_seconds_after_stampede": round(max(0.0, after_seconds), 2),
    }


# --- the drills' books ----------------------------------------------------------------------


def books_check(product: str, numbers: list[str], allocation: int) -> dict:
    """Every answered 202 complete exactly once (or its card declined), nothing sold beyond
    the allocation."""
    from django.db.models import Count, Sum

    from legacy_api.models import OrderLine
    from orders.models import HotOrder, OrderStage, OrderStatus, SaleAllocation
    from shop.models import Product

    orders = {o.number: o for o in HotOrder.objects.filter(product__slug=product)}
    answered = set(numbers)
    completed = [n for n in answered if n in orders and orders[n].status == OrderStatus.COMPLETE]
    # A card the legacy API declined ends its order there, and gives its unit back: kept, not lost.
    declined = [n for n in answered if n in orders and orders[n].stage == OrderStage.CARD_DECLINED]
    lost = sorted(
        n
        for n in answered
        if n not in orders or (orders[n].status != OrderStatus.COMPLETE and orders[n].stage != OrderStage.CARD_DECLINED)
    )
    hot_lines = OrderLine.objects.filter(product_slug=product, order__reference__startswith="key-")
    refs_twice = (
        hot_lines.values("order__reference").annotate(n=Count("order_id", distinct=True)).filter(n__gt=1).count()
    )
    legacy_refs = set(hot_lines.values_list("order__reference", flat=True))
    answered_refs = {orders[n].reference for n in answered if n in orders}
    beyond_accepted = sorted(legacy_refs - answered_refs)
    legacy_units = hot_lines.aggregate(units=Sum("quantity"))["units"] or 0
    sale = SaleAllocation.objects.get(product__slug=product)
    oversold = (
        max(0, sale.reserved + sale.sold - sale.allocated)
        + Product.objects.filter(slug=product, stock__lt=0).count()
        + max(0, legacy_units - allocation)
    )
    states = Counter(o.status for o in orders.values())
    return {
        "accepted": len(numbers),
        "completed": len(completed),
        "declined": len(declined),
        "lost": len(lost),
        "lost_numbers": lost[:20],
        "lost_stages": dict(Counter(orders[n].stage if n in orders else "missing" for n in lost)),
        "duplicated": (len(numbers) - len(answered)) + refs_twice + len(beyond_accepted),
        "placed_without_202": beyond_accepted[:20],
        "oversold": oversold,
        "legacy_orders": len(legacy_refs),
        "legacy_units": legacy_units,
        "allocation": {"allocated": sale.allocated, "reserved": sale.reserved, "sold": sale.sold},
        "hot_orders": dict(states),
        "unanswered_orders": sorted(n for n in orders if n and n not in answered)[:20],
        "dead_lettered": sum(1 for o in orders.values() if o.stage == OrderStage.DEAD_LETTERED),
    }


# --- the unified log against the books ------------------------------------------------------

# The hot path's events in the log: one ACCEPTED per order, then one terminal event.
LOG_SOURCES = ("shop.hotpath",)
LOG_ACCEPTED = "ACCEPTED"
LOG_TERMINAL = ("COMPLETE", "FAILED")


def log_check(numbers: list[str]) -> dict:
    """Each accepted order (`numbers`, the 202s) has exactly one ACCEPTED and exactly one
    terminal (COMPLETE or FAILED) hot-path event in the log: none missing, none twice.
    While the hot path writes no event at all the log is "not wired", which is no failure;
    once it writes any, every accepted order must match (`log_mismatched` 0)."""
    from events.models import Event

    hot = Event.objects.filter(source__in=LOG_SOURCES)
    if not hot.exists():
        return {"log": "not wired", "log_mismatched": 0}
    wanted = set(numbers)
    accepted: Counter[str] = Counter()
    terminal: Counter[str] = Counter()
    for data, status in hot.values_list("data", "status").iterator():
        # The hot path names the order `number`; the log's own examples say `order_number`.
        number = (data.get("number") or data.get("order_number")) if isinstance(data, dict) else None
        if number not in wanted:
            continue
        status = status.upper()
        if status == LOG_ACCEPTED:
            accepted[number] += 1
        elif status in LOG_TERMINAL:
            terminal[number] += 1
    faults = {
        "log_accepted_missing": sorted(n for n in wanted if not accepted[n]),
        "log_accepted_twice": sorted(n for n in wanted if accepted[n] > 1),
        "log_terminal_missing": sorted(n for n in wanted if not terminal[n]),
        "log_terminal_twice": sorted(n for n in wanted if terminal[n] > 1),
    }
    mismatched = set().union(*faults.values())
    return {
        "log": "mismatch" if mismatched else "ok",
        "log_mismatched": len(mismatched),
        **{name: len(found) for name, found in faults.items()},
        "log_mismatched_numbers": sorted(mismatched)[:20],
    }


class ConsumerLag(threading.Thread):
    """Samples each consumer's lag (the age of the oldest event it has yet to process) once
    a second, from the log's checkpoints; `summary()` gives each one's p99 and maximum."""

    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True, name="consumer-lag")
        self.interval = interval
        self.halt = threading.Event()
        self.samples: dict[str, list[float]] = {}
        self.errors = 0

    def run(self) -> None:
        from django.conf import settings
        from django.db import DatabaseError, connection

        from events.models import Checkpoint
        from events.selectors import consumer_state

        try:
            while not self.halt.wait(self.interval):
                try:
                    names = set(settings.EVENT_CONSUMERS) | set(Checkpoint.objects.values_list("consumer", flat=True))
                    for name in sorted(names):
                        lag = consumer_state(consumer=name).lag_seconds
                        self.samples.setdefault(name, []).append(lag)
                except DatabaseError:
                    self.errors += 1  # a sample missed is no figure wrong
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        return self.summary()

    def summary(self) -> dict:
        if not self.samples:
            return {"consumers": "none registered"}
        return {
            name: {"p99_seconds": _p99(lags), "max_seconds": max(lags), "samples": len(lags)}
            for name, lags in sorted(self.samples.items())
        }


def _p99(values: list[float]) -> float:
    """The nearest-rank 99th percentile."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)], 3)
