"""Celery tasks of the hot path: placing one order with the legacy API, and the periodic
sweepers (outbox, expired reservations)."""

from __future__ import annotations

import logging
import secrets
import time

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from legacy_client import LegacyUnavailable
from orders import placement, relay, sale_reconcile, sale_window, sales, sweeps

logger = logging.getLogger(__name__)

__all__ = ["relay"]  # imported for its worker signals: the outbox relay runs in every worker

# Worth another attempt later: the legacy API is down or full, our own database, cache or
# broker is restarting, or this worker lacks the card's key (another one, rotated, has it).
# Anything else is a bug: logged, and the order dead-lettered.
RETRYABLE = (
    LegacyUnavailable,
    placement.CardKeyMissing,
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)


def retry_countdown(retries: int, *, retry_after: float | None = None) -> float:
    """Seconds before retry number `retries` + 1: ORDERS_RETRY_BACKOFF doubled for each retry
    made, at most ORDERS_RETRY_BACKOFF_MAX, less a random part of up to half of it (so that
    orders failing together do not come back together, yet the retries always last at least
    half their schedule: an outage shorter than that dead-letters nothing); never sooner than
    the legacy API's Retry-After, up to ORDERS_RETRY_BACKOFF_MAX (a proxy's date far ahead must
    not park an accepted order past its reservation)."""
    nominal = min(settings.ORDERS_RETRY_BACKOFF_MAX, settings.ORDERS_RETRY_BACKOFF * 2**retries)
    countdown = nominal / 2 + nominal / 2 * secrets.randbelow(1001) / 1000
    return max(countdown, min(retry_after or 0.0, settings.ORDERS_RETRY_BACKOFF_MAX))


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=settings.ORDERS_MAX_RETRIES)
def order_process(self, order_id: int, still_placing_since: float | None = None) -> str:
    """Places one accepted order with the legacy API. Idempotent: a final order is left alone,
    and the legacy API deduplicates on the order's reference."""
    try:
        outcome = placement.order_send_to_legacy(order_id=order_id, worker=self.request.hostname or "worker")
        if not sales.sale_order_settled(order_id=order_id):
            sale_settle.apply_async(args=[order_id], countdown=_settle_countdown())
        return outcome
    except placement.LegacyStillPlacing as wait:
        # The legacy API works on this reference for an earlier request, which may have died
        # there: its lease ends that in time. Only when it still answers so after
        # ORDERS_STILL_PLACING_SECONDS does each answer count as a failed attempt.
        since = still_placing_since or time.time()
        if time.time() - since < settings.ORDERS_STILL_PLACING_SECONDS:
            return _defer(self, order_id, wait, still_placing_since=since)
        return _retry_or_dead_letter(self, order_id, LegacyUnavailable(f"{wait} since {time.ctime(since)}"))
    except placement.TryLater as wait:
        # Other workers held every permit for ORDERS_SLOT_WAIT_SECONDS (our own limit at work),
        # or another delivery of this message holds the order's claim: not a failure. The
        # order queues again with the retries it has used, so that many workers sharing a few
        # permits cannot use them up and dead-letter healthy orders, and so that a duplicate
        # waits for the claim to end instead of sending the order a second time.
        return _defer(self, order_id, wait, still_placing_since=still_placing_since)
    except RETRYABLE as exc:
        return _retry_or_dead_letter(self, order_id, exc)
    except Exception as exc:
        # A bug: retrying would meet it again, and the stalled-order sweep would send the order
        # round for ever, unseen. Parked (its units stay reserved), the merchants are told.
        logger.exception("order %s could not be processed", order_id)
        placement.order_dead_letter(order_id=order_id, error=f"unexpected error: {exc!r}"[:2000])
        return "dead_lettered"


def _defer(task, order_id: int, wait: placement.TryLater, *, still_placing_since: float | None) -> str:
    backoff = settings.ORDERS_RETRY_BACKOFF
    delay = backoff if wait.retry_in is None else min(max(wait.retry_in, 0.1), settings.ORDERS_RETRY_BACKOFF_MAX)
    kwargs = {"still_placing_since": still_placing_since} if still_placing_since else {}
    task.apply_async(
        args=[order_id],
        kwargs=kwargs,
        countdown=delay + backoff * secrets.randbelow(1000) / 1000,
        retries=task.request.retries,
    )
    logger.info("order %s deferred: %s", order_id, wait)
    return "deferred"


def _retry_or_dead_letter(task, order_id: int, exc: Exception) -> str:
    if task.request.retries >= task.max_retries:
        placement.order_dead_letter(order_id=order_id, error=f"{exc} (after {task.request.retries + 1} attempts)")
        return "dead_lettered"
    logger.info("order %s will be retried: %s", order_id, exc)
    raise task.retry(
        exc=exc,
        countdown=retry_countdown(task.request.retries, retry_after=getattr(exc, "retry_after", None)),
    )


# A closing sale's follow-up after an order, tried again every second or two for about half a
# minute; what is still left then is the reconciliation's.
SALE_SETTLE_TRIES = 20


def _settle_countdown() -> float:
    return 1 + secrets.randbelow(1000) / 1000


@shared_task(bind=True, acks_late=True, max_retries=SALE_SETTLE_TRIES)
def sale_settle(self, order_id: int) -> str:
    """Gives a closing sale's hold and allocation back what a settled order no longer needs,
    once the change that held the sale's lock has ended: without it, the last order of a
    closing sale settled during another order's follow-up left the sale closing, its hold
    taken, until the reconciliation."""
    try:
        settled = sales.sale_order_settled(order_id=order_id)
    except RETRYABLE as exc:  # our database or cache restarting: asked again like a busy sale
        logger.info("order %s: its closing sale not followed yet: %s", order_id, exc)
        settled = False
    if settled:
        return "settled"
    if self.request.retries >= self.max_retries:
        logger.warning("order %s: its closing sale is left to the reconciliation", order_id)
        return "left to the reconciliation"
    raise self.retry(countdown=_settle_countdown())


@shared_task(acks_late=True)
def outbox_sweep() -> int:
    """Re-publishes orders whose message did not reach the broker after commit."""
    return sweeps.outbox_sweep()


@shared_task(acks_late=True)
def stalled_sweep() -> int:
    """Re-publishes orders whose message was lost after it reached the broker."""
    return sweeps.orders_stalled_requeue()


@shared_task(acks_late=True)
def sale_window_sweep() -> list[str]:
    """Closes the sales whose window has ended: their unsold units go back to open stock."""
    return sale_window.sales_due_close()


@shared_task(acks_late=True)
def sales_reconcile() -> list[dict]:
    """Trues every open sale's hold up with its allocation and orders (Gilt's true-up)."""
    return [check.as_dict() for check in sale_reconcile.sale_reconcile()]


@shared_task(acks_late=True)
def reservation_sweep() -> int:
    """Releases reservations that were never confirmed in time. The orders whose message was
    lost are published again first (with their reservations renewed): beat sends this sweep in
    the same tick as the stalled one, and run first it failed them as expired instead."""
    sweeps.orders_stalled_requeue()
    return sweeps.reservations_expire()
