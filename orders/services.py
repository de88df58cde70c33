"""Writes of the hot path's command side: accepting an order (idempotency, throttling,
reservation, order number, outbox), the reservation bookkeeping, and the sweepers.

Placing accepted orders with the legacy API lives in `orders.placement`."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from orders.inputs import OrderInput
from orders.models import (
    HotOrder,
    OrderStage,
    OrderStageEvent,
    OrderStatus,
    OutboxMessage,
    Reservation,
    SaleAllocation,
)
from orders.selectors import (
    REMAINING_TTL,
    STATUS_TTL,
    allocation_remaining,
    hot_product_window,
    order_by_key,
    remaining_cache_key,
    status_cache_key,
    status_entry,
)

logger = logging.getLogger(__name__)


# --- Refusals ---------------------------------------------------------------------------
class OrderRefused(Exception):
    """The order cannot be accepted; `status` and `payload` are the HTTP answer."""

    status = 409
    code = "refused"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.payload = {"error": self.code, "detail": detail, **extra}
        self.headers: dict[str, str] = {}


class SoldOut(OrderRefused):
    code = "sold_out"


class NotHot(OrderRefused):
    status = 404
    code = "not_hot"


class NotOnSale(OrderRefused):
    status = 404
    code = "not_on_sale"


class SaleNotStarted(OrderRefused):
    code = "sale_not_started"


class SaleEnded(OrderRefused):
    code = "sale_ended"


class IdempotencyKeyReused(OrderRefused):
    status = 422
    code = "idempotency_key_reused"


class Throttled(OrderRefused):
    status = 429
    code = "throttled"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


# --- Acceptance -------------------------------------------------------------------------
@dataclass(frozen=True)
class Accepted:
    order: HotOrder
    replayed: bool


def status_url(*, category: str, product: str, number: str, token: str) -> str:
    """The status URL lives under the product's prefix, so the edge sends it to the hot path."""
    return f"/shop/{category}/{product}/orders/{number}/{token}"


def throttle_hit(*, scope: str, ident: str, limit: int, window: int) -> int | None:
    """Counts one request of a client in the shared cache; returns the seconds to wait when it
    is over `limit` per `window`, else None."""
    if limit <= 0 or not ident:
        return None
    now = time.time()
    bucket = int(now // window)
    key = f"orders:throttle:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}:{bucket}"
    cache.add(key, 0, window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window + 1)
        count = 1
    if count > limit:
        return max(1, math.ceil((bucket + 1) * window - now))
    return None


def hot_product_refusal(product: dict | None) -> OrderRefused | None:
    """Why this product cannot be ordered on the hot path now, from the cached product (the
    reservation checks the allocation row again)."""
    if product is None or not product["is_hot"]:
        return NotHot("This product is not on the hot path.")
    if not product["is_on_sale"]:
        return NotOnSale("This product is not on sale.")
    window = hot_product_window(product)
    if window == "not_started":
        return SaleNotStarted("The sale has not started yet.", starts_at=product["starts_at"].isoformat())
    if window == "ended":
        return SaleEnded("The sale has ended.")
    return None


def _throttle(*, idempotency_key: str, client_ip: str | None, email: str) -> None:
    """Counts one order attempt per client address and per email; raises Throttled.

    Repeats of one key count once (concurrent replays must get the first answer, not 429);
    a throttled key is forgotten so that retrying it later counts again."""
    window = settings.ORDERS_THROTTLE_WINDOW
    seen_key = f"orders:throttle:key:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"
    if not cache.add(seen_key, 1, window):
        return
    for scope, ident, limit in (
        ("ip", client_ip or "", settings.ORDERS_THROTTLE_PER_IP),
        ("email", email.lower(), settings.ORDERS_THROTTLE_PER_EMAIL),
    ):
        wait = throttle_hit(scope=scope, ident=ident, limit=limit, window=window)
        if wait is not None:
            cache.delete(seen_key)
            raise Throttled("Too many orders from you; try again shortly.", retry_after=wait)


def _replay(order: HotOrder, fingerprint: str) -> Accepted:
    if not secrets.compare_digest(order.fingerprint, fingerprint):
        raise IdempotencyKeyReused("This Idempotency-Key was used for another order; use a fresh key.")
    return Accepted(order=order, replayed=True)


def order_number_next() -> str:
    """The next order number (T + digits): unique and increasing, from a PostgreSQL sequence
    (no row lock held until commit) or, elsewhere, a counter row bumped in one statement."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval('orders_hot_order_number_seq')")
        else:
            cursor.execute(
                "INSERT INTO orders_ordernumbercounter (name, value) VALUES ('hot', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = orders_ordernumbercounter.value + 1 RETURNING value"
            )
        value = cursor.fetchone()[0]
    return f"T{value:06d}"


def allocation_reserve(*, allocation_id: int, quantity: int, now=None) -> None:
    """Takes `quantity` from the allocation in one conditional UPDATE: the WHERE clause is
    re-checked after any concurrent writer commits, so the allocation is never oversold.
    Raises SoldOut, NotHot, SaleNotStarted or SaleEnded."""
    now = now or timezone.now()
    reserved = (
        SaleAllocation.objects.filter(
            pk=allocation_id,
            is_hot=True,
            allocated__gte=F("reserved") + F("sold") + quantity,
        )
        .exclude(starts_at__gt=now)
        .exclude(ends_at__lte=now)
        .update(reserved=F("reserved") + quantity)
    )
    if reserved == 1:
        return
    allocation = SaleAllocation.objects.filter(pk=allocation_id).first()
    if allocation is None or not allocation.is_hot:
        raise NotHot("This product is not on the hot path.")
    window = allocation.window_state(now)
    if window == "not_started":
        raise SaleNotStarted("The sale has not started yet.", starts_at=allocation.starts_at.isoformat())
    if window == "ended":
        raise SaleEnded("The sale has ended.")
    # The next buyers are answered from the cache without touching the row.
    cache_set_quietly(remaining_cache_key(allocation_id), allocation.remaining, REMAINING_TTL)
    raise SoldOut("Sold out.", remaining=allocation.remaining)


def reservation_release(*, order: HotOrder) -> None:
    """Gives a held reservation back to the allocation (the order row is locked by the caller)."""
    if order.reservation != Reservation.HELD:
        return
    SaleAllocation.objects.filter(product_id=order.product_id, reserved__gte=order.quantity).update(
        reserved=F("reserved") - order.quantity
    )
    order.reservation = Reservation.RELEASED
    _remaining_forget(order)


def reservation_confirm(*, order: HotOrder) -> None:
    """Turns the held reservation into a sale (the order row is locked by the caller)."""
    if order.reservation == Reservation.HELD:
        SaleAllocation.objects.filter(product_id=order.product_id, reserved__gte=order.quantity).update(
            reserved=F("reserved") - order.quantity, sold=F("sold") + order.quantity
        )
    elif order.reservation == Reservation.RELEASED:
        # Released (expired) while the legacy API placed it after all: count the sale if the
        # allocation still has room; the legacy API's stock is the record either way.
        counted = SaleAllocation.objects.filter(
            product_id=order.product_id, allocated__gte=F("reserved") + F("sold") + order.quantity
        ).update(sold=F("sold") + order.quantity)
        if not counted:
            logger.warning("order %s was placed after its reservation was released", order.number)
        _remaining_forget(order)
    # Held to sold leaves `allocated - reserved - sold` as it was: the cached figure stands.
    order.reservation = Reservation.CONFIRMED


def _remaining_forget(order: HotOrder) -> None:
    allocation_id = SaleAllocation.objects.filter(product_id=order.product_id).values_list("pk", flat=True).first()
    if allocation_id is not None:
        transaction.on_commit(lambda: cache.delete(remaining_cache_key(allocation_id)))


def order_stage_set(order: HotOrder, stage: str, detail: str = "") -> None:
    order.stage = stage
    OrderStageEvent.objects.create(order=order, stage=stage, detail=detail[:500])


def status_refresh_on_commit(order: HotOrder) -> None:
    """Refreshes the buyer's read model once the change is committed."""
    entry = status_entry(order)

    def refresh():
        try:
            cache.set(status_cache_key(entry["number"]), entry, timeout=STATUS_TTL)
        except Exception:  # the change is committed; the read model refills from the database on a miss
            logger.warning("could not refresh the status of order %s", entry["number"], exc_info=True)
            cache_delete_quietly(status_cache_key(entry["number"]))

    transaction.on_commit(refresh)


def cache_set_quietly(key: str, value, timeout: int) -> None:
    try:
        cache.set(key, value, timeout)
    except Exception:
        logger.warning("could not set %s in the cache", key, exc_info=True)


def cache_delete_quietly(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:
        logger.warning("could not drop %s from the cache", key, exc_info=True)


def order_accept(*, product: dict, idempotency_key: str, data: OrderInput, client_ip: str | None = None) -> Accepted:
    """Accepts an order for a hot product, or returns the first answer for a replayed key.

    One short transaction: the intent with its key (unique), the reservation, the number,
    the stage history and the outbox row. The Celery message is published after commit;
    the outbox row stays until the broker has it, so the order cannot be lost.
    """
    fingerprint = data.fingerprint(product_slug=product["slug"])
    existing = order_by_key(idempotency_key=idempotency_key)
    if existing is not None:
        # The first answer stands even if the sale has ended or sold out since.
        return _replay(existing, fingerprint)
    refusal = hot_product_refusal(product)
    if refusal is not None:
        raise refusal

    # A sold-out product is answered without touching the allocation row the buyers fight
    # over, and before the throttle: the answer is the same for everybody and costs nothing.
    remaining = allocation_remaining(allocation_id=product["allocation_id"])
    if remaining < data.quantity:
        raise SoldOut("Sold out.", remaining=remaining)

    _throttle(idempotency_key=idempotency_key, client_ip=client_ip, email=data.email)

    now = timezone.now()
    try:
        with transaction.atomic():
            order = HotOrder.objects.create(
                number=order_number_next(),
                token=secrets.token_urlsafe(32),
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                product_id=product["product_id"],
                quantity=data.quantity,
                unit_price_cents=product["price_cents"],
                customer_name=data.name,
                customer_email=data.email,
                card_number=data.card_number,
                card_last4=data.card_number[-4:],
                reserved_until=now + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS),
                client_ip=client_ip,
                created_at=now,
            )
            order_stage_set(order, OrderStage.QUEUED, "accepted by the hot path")
            OutboxMessage.objects.create(order=order)
            # Last, just before the commit: the allocation's row is the one every buyer
            # waits for, so its lock is held for this UPDATE and the COMMIT only. A buyer who
            # loses the race rolls all of the above back (its number is skipped, not reused).
            allocation_reserve(allocation_id=product["allocation_id"], quantity=data.quantity, now=now)
            allocation_id = product["allocation_id"]
            entry = status_entry(order)

            def after_commit():
                # Read model first: a worker may finish the order before this process
                # returns from publishing, and its newer state must not be overwritten.
                # The order is committed: a cache that fails here refills from the database.
                cache_set_quietly(status_cache_key(entry["number"]), entry, STATUS_TTL)
                # Dropped, not decremented: a reader may have refilled it from the database
                # since this commit, and a decrement would then count this order twice.
                cache_delete_quietly(remaining_cache_key(allocation_id))
                outbox_publish(order_id=order.pk)

            transaction.on_commit(after_commit)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        existing = order_by_key(idempotency_key=idempotency_key)
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    return Accepted(order=order, replayed=False)


# --- The outbox -------------------------------------------------------------------------
def outbox_publish(*, order_id: int) -> bool:
    """Sends the order's task message; the outbox row goes only once the broker has it."""
    from orders.tasks import order_process

    try:
        order_process.apply_async(args=[order_id])
    except Exception as exc:  # broker away: the sweeper tries again
        logger.warning("could not publish order %s: %s", order_id, exc)
        OutboxMessage.objects.filter(order_id=order_id).update(
            publish_attempts=F("publish_attempts") + 1, last_error=str(exc)[:500]
        )
        return False
    OutboxMessage.objects.filter(order_id=order_id).delete()
    return True


def outbox_sweep(*, older_than_seconds: float | None = None, limit: int = 500) -> int:
    """Publishes what the request that accepted an order could not (crash, broker away)."""
    grace = settings.ORDERS_OUTBOX_GRACE_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    order_ids = list(
        OutboxMessage.objects.filter(created_at__lte=cutoff)
        .order_by("created_at")
        .values_list("order_id", flat=True)[:limit]
    )
    return sum(outbox_publish(order_id=order_id) for order_id in order_ids)


def orders_stalled_requeue(*, limit: int = 200) -> int:
    """Publishes again the orders no worker has touched for ORDERS_STALL_SECONDS: a message
    lost by a broker without acknowledgements (the embedded one, when a worker is killed)
    must not leave an accepted order waiting forever. Duplicates are harmless: the task is
    idempotent and the legacy API deduplicates on the reference."""
    cutoff = timezone.now() - timedelta(seconds=settings.ORDERS_STALL_SECONDS)
    order_ids = list(
        HotOrder.objects.filter(
            status=OrderStatus.PROCESSING,
            stage__in=[OrderStage.QUEUED, OrderStage.VALIDATING],
            updated_at__lt=cutoff,
            outbox__isnull=True,
        ).values_list("pk", flat=True)[:limit]
    )
    for order_id in order_ids:
        OutboxMessage.objects.get_or_create(order_id=order_id)
        HotOrder.objects.filter(pk=order_id).update(updated_at=timezone.now())
        outbox_publish(order_id=order_id)
    return len(order_ids)


def reservations_expire(*, limit: int = 200) -> int:
    """Releases reservations nobody confirmed in time (the order failed as expired).
    Dead-lettered orders keep theirs: a merchant decides about them. So does an order a worker
    has already sent: the legacy API may have placed it, and only sending it again (the
    stalled sweep does) can tell; releasing its units could sell them twice."""
    now = timezone.now()
    order_ids = list(
        HotOrder.objects.filter(
            status=OrderStatus.PROCESSING, reservation=Reservation.HELD, reserved_until__lt=now, attempts=0
        )
        .exclude(stage=OrderStage.DEAD_LETTERED)
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for order_id in order_ids:
        with transaction.atomic():
            order = HotOrder.objects.select_for_update().get(pk=order_id)
            if (
                order.is_final
                or order.reserved_until >= now
                or order.stage == OrderStage.DEAD_LETTERED
                or order.attempts
            ):
                continue
            order_stage_set(order, OrderStage.EXPIRED, "reservation expired before the order was placed")
            reservation_release(order=order)
            order.status = OrderStatus.FAILED
            order.card_number = ""
            order.completed_at = now
            order.save()
            status_refresh_on_commit(order)
            expired += 1
    return expired
