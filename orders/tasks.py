"""Celery tasks of the hot path: placing one order with the legacy API, and the periodic
sweepers (outbox, expired reservations)."""

from __future__ import annotations

import logging
import secrets

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from legacy_client import LegacyUnavailable
from orders import placement, relay, sale_reconcile, sales, sweeps

logger = logging.getLogger(__name__)

__all__ = ["relay"]  # imported for its worker signals: the outbox relay runs in every worker

# Worth another attempt later: the legacy API is down or full, or our own database, cache or
# broker is restarting. Anything else is a bug and fails loudly.
RETRYABLE = (
    LegacyUnavailable,
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=settings.ORDERS_RETRY_BACKOFF,
    retry_backoff_max=settings.ORDERS_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.ORDERS_MAX_RETRIES,
)
def order_process(self, order_id: int) -> str:
    """Places one accepted order with the legacy API. Idempotent: a final order is left alone,
    and the legacy API deduplicates on the order's reference."""
    try:
        outcome = placement.order_send_to_legacy(order_id=order_id, worker=self.request.hostname or "worker")
        sales.sale_order_settled(order_id=order_id)
        return outcome
    except placement.TryLater as wait:
        # Other workers held every permit for ORDERS_SLOT_WAIT_SECONDS (our own limit at work),
        # or another delivery of this message holds the order's claim: not a failure. The
        # order queues again with the retries it has used, so that many workers sharing a few
        # permits cannot use them up and dead-letter healthy orders, and so that a duplicate
        # waits for the claim to end instead of sending the order a second time.
        backoff = settings.ORDERS_RETRY_BACKOFF
        delay = backoff if wait.retry_in is None else max(wait.retry_in, 0.1)
        self.apply_async(
            args=[order_id], countdown=delay + backoff * secrets.randbelow(1000) / 1000, retries=self.request.retries
        )
        logger.info("order %s deferred: %s", order_id, wait)
        return "deferred"
    except RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            placement.order_dead_letter(order_id=order_id, error=f"{exc} (after {self.request.retries + 1} attempts)")
            return "dead_lettered"
        logger.info("order %s will be retried: %s", order_id, exc)
        raise


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
    return sales.sales_due_close()


@shared_task(acks_late=True)
def sales_reconcile() -> list[dict]:
    """Trues every open sale's hold up with its allocation and orders (Gilt's true-up)."""
    return [check.as_dict() for check in sale_reconcile.sale_reconcile()]


@shared_task(acks_late=True)
def reservation_sweep() -> int:
    """Releases reservations that were never confirmed in time."""
    return sweeps.reservations_expire()
