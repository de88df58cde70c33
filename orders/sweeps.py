"""The hot path's sweepers, run by beat: publishing what the outbox's relay left, publishing
again the orders whose message was lost, and releasing reservations nobody confirmed in time.
The last two hold back while the workers make progress through a deep queue, but for an order
a killed worker left claimed."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone

from orders.broker_depth import broker_queue_depth, orders_waiting_in_broker
from orders.lifecycle import order_transition
from orders.models import HotOrder, OrderStage, OrderStatus, OutboxMessage, Reservation
from orders.outbox import outbox_publish, outbox_relay


def outbox_sweep(*, older_than_seconds: float | None = None, limit: int = 500) -> int:
    """Publishes what the workers' relay has not (no worker running, broker away): the rows
    older than ORDERS_OUTBOX_GRACE_SECONDS."""
    grace = settings.ORDERS_OUTBOX_GRACE_SECONDS if older_than_seconds is None else older_than_seconds
    return outbox_relay(older_than_seconds=grace, limit=limit)


def orders_stalled_requeue(*, limit: int = 200) -> int:
    """Publishes again the orders no worker has touched for ORDERS_STALL_SECONDS: a message
    lost by a broker without acknowledgements (the embedded one, when a worker is killed, or a
    Redis restarted without persistence, which loses its whole queue) must not leave an
    accepted order waiting forever. Duplicates are harmless: the task is idempotent and the
    legacy API deduplicates on the reference. An order published again gets its reservation
    renewed, as a worker's claim renews it: it was the shop that lost its message.

    An order a worker took and never released (killed mid-call: Redis gives its message back
    only after the visibility timeout, an hour) is published once its claim is over, whatever
    the other orders do. The others are not while the workers make progress: in a deep queue,
    orders untouched for that long are merely waiting their turn, and publishing them again
    would bury the queue under copies. Once the queue stops moving, those whose message is not
    in it are published, all of them, `limit` at a time: on Redis and the embedded broker the
    sweep reads which orders' messages wait there (not how many messages of every task: the
    beat's own tasks sent in the same tick were taken for orders', and lost orders were left
    to expire); where the broker tells only how many messages wait, of every task (RabbitMQ),
    as many as the queue is short of; where it tells nothing (SQS, a broker away), `limit` a
    stall period."""
    now = timezone.now()
    progressing = workers_making_progress(now=now)
    cutoff = now - timedelta(seconds=settings.ORDERS_STALL_SECONDS)
    stalled = HotOrder.objects.filter(
        status=OrderStatus.PROCESSING,
        stage__in=[OrderStage.QUEUED, OrderStage.VALIDATING],
        updated_at__lt=cutoff,
        outbox__isnull=True,
    ).order_by("pk")
    # Claimed and never released: the worker died with it (one that defers or retries an
    # order releases its claim, and its message waits in the queue).
    left = list(stalled.filter(attempts__gt=0, claimed_until__lt=now).values_list("pk", flat=True)[:limit])
    if progressing and not left:
        return 0
    waiting = orders_waiting_in_broker()
    if progressing:
        return _published_again([pk for pk in left if waiting is None or pk not in waiting], stalled_before=cutoff)
    if waiting is not None:
        lost = [pk for pk in stalled.values_list("pk", flat=True) if pk not in waiting]
        return sum(
            _published_again(lost[first : first + limit], stalled_before=cutoff) for first in range(0, len(lost), limit)
        )
    depth = broker_queue_depth(fresh=True)
    budget = limit if depth is None else stalled.count() - depth
    published = 0
    while published < budget:
        order_ids = list(stalled.values_list("pk", flat=True)[: min(limit, budget - published)])
        if not order_ids:
            break
        done = _published_again(order_ids, stalled_before=cutoff)
        if not done:  # another sweep holds them
            break
        published += done
    return published


def _published_again(order_ids: list[int], *, stalled_before) -> int:
    """Publishes each order's message again, its reservation renewed; returns how many. An
    order is taken by one conditional UPDATE that renews it, so a sweep running beside this one
    (beat sends the stalled and the reservation sweeps in one tick, and each publishes) finds
    it touched and passes over it; the message goes after that commit, with no row held while
    the broker answers. One the broker refuses gets an outbox row, which the relay sends once
    it is back."""
    published = 0
    for order_id in order_ids:
        touched = timezone.now()
        renewed = touched + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS)
        taken = HotOrder.objects.filter(
            pk=order_id, status=OrderStatus.PROCESSING, updated_at__lt=stalled_before
        ).update(updated_at=touched, reserved_until=Greatest("reserved_until", Value(renewed)))
        if not taken:
            continue
        if outbox_publish(order_id=order_id):
            published += 1
        else:
            OutboxMessage.objects.get_or_create(order_id=order_id)
    return published


def workers_making_progress(*, now=None) -> bool:
    """Whether a worker has claimed, retried or finished an order lately."""
    since = (now or timezone.now()) - timedelta(seconds=settings.ORDERS_STALL_SECONDS)
    return HotOrder.objects.filter(updated_at__gte=since, attempts__gt=0).exists()


def reservations_expire(*, limit: int = 200) -> int:
    """Releases reservations nobody confirmed in time (the order failed as expired).
    Dead-lettered orders keep theirs: a merchant decides about them. So does an order a worker
    has already sent: the legacy API may have placed it, and only sending it again (the
    stalled sweep does) can tell; releasing its units could sell them twice.

    Nor does an order still waiting in the queue while the workers make progress through it:
    a deep queue (a big sale, a slow backend) must not fail orders it is about to place. Only
    when no worker has taken or finished any order for ORDERS_STALL_SECONDS are the waiting
    ones given up."""
    now = timezone.now()
    if workers_making_progress(now=now):
        return 0
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
            order = HotOrder.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
            if (
                order.is_final
                or order.reserved_until >= now
                or order.stage == OrderStage.DEAD_LETTERED
                or order.attempts
            ):
                continue
            order_transition(order, to=OrderStage.EXPIRED, detail="reservation expired before the order was placed")
            expired += 1
    return expired
