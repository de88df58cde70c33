"""The outbox and its relay: an accepted order's task message is written to the outbox in the
transaction that accepts it, and a relay publishes it, so the buyer's 202 waits for one commit
and nothing else, and neither a crash nor a broker outage can lose the order.

The relay runs in every Celery worker's main process (a thread started when the worker is
ready, see `orders.relay`) and, as a safety net, as a beat sweep. Relays on several hosts
share the rows with `FOR UPDATE SKIP LOCKED`; a row leaves the outbox in the transaction that
saw its message reach the broker. A relay that dies between the two publishes a message twice,
which the task tolerates (a claim per order, and the legacy API deduplicates on the reference).

The task is named, not imported: the tasks call the services, never the other way round."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders.models import OutboxMessage
from tracing.context import attach

logger = logging.getLogger(__name__)

ORDER_TASK = "orders.tasks.order_process"


def _said(exc: Exception) -> str:
    """What a failed publish says. A confirm RabbitMQ never sent is a timeout without words,
    re-raised by kombu as an OperationalError('') that would leave the row's error blank."""
    return str(exc) or f"{exc!r} from {exc.__cause__ or exc.__context__!r}"


def outbox_relay(*, limit: int = 500, older_than_seconds: float = 0.0) -> int:
    """Publishes up to `limit` outbox rows, oldest first, and removes those the broker took.
    Returns how many were published. Rows another relay holds are skipped, not waited for."""
    with transaction.atomic():
        rows = OutboxMessage.objects.select_for_update(skip_locked=True).order_by("id")
        if older_than_seconds:
            rows = rows.filter(created_at__lte=timezone.now() - timedelta(seconds=older_than_seconds))
        taken = list(rows.values_list("order_id", "trace_context")[:limit])
        if not taken:
            return 0
        order_ids = [order_id for order_id, _ in taken]
        published: list[int] = []
        try:
            # One round trip to Redis for the batch (a pipeline), not one per message; a
            # transport that cannot batch publishes each at once. A row counts as published
            # once the batch is flushed: a failed flush leaves every row of it for the next
            # run (some may have reached the broker: a second copy is harmless).
            with current_app.producer_or_acquire() as producer, producer.batch(max_size=limit):
                sent = []
                for order_id, carrier in taken:
                    with attach(carrier):  # the message carries the buyer's trace to the worker
                        current_app.send_task(ORDER_TASK, args=[order_id], producer=producer)
                    sent.append(order_id)
            published = sent
        except Exception as exc:  # broker away: what was not sent stays for the next run
            logger.warning("could not publish order %s: %s", order_ids[len(published)], _said(exc))
            OutboxMessage.objects.filter(order_id=order_ids[len(published)]).update(
                publish_attempts=F("publish_attempts") + 1, last_error=_said(exc)[:500]
            )
        if published:
            OutboxMessage.objects.filter(order_id__in=published).delete()  # one DELETE: nothing cascades
    return len(published)


def outbox_publish(*, order_id: int) -> bool:
    """Sends one order's task message now (a sweeper's re-publish); its outbox row, if any,
    goes once the broker has the message."""
    try:
        with attach(None):  # a publish that raises leaves no span of its own current
            current_app.send_task(ORDER_TASK, args=[order_id])
    except Exception as exc:  # broker away: the sweeper tries again
        logger.warning("could not publish order %s: %s", order_id, _said(exc))
        OutboxMessage.objects.filter(order_id=order_id).update(
            publish_attempts=F("publish_attempts") + 1, last_error=_said(exc)[:500]
        )
        return False
    OutboxMessage.objects.filter(order_id=order_id).delete()
    return True
