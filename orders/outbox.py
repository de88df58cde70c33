"""The outbox: an accepted order's task message is published after commit, and its outbox row
stays until the broker has it, so a crash or a broker outage cannot lose the order.

The task is named, not imported: the tasks call the services, never the other way round."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import connection
from django.db.models import F

from orders.models import OutboxMessage

logger = logging.getLogger(__name__)

ORDER_TASK = "orders.tasks.order_process"


def outbox_publish(*, order_id: int) -> bool:
    """Sends the order's task message; the outbox row goes only once the broker has it."""
    try:
        current_app.send_task(ORDER_TASK, args=[order_id])
    except Exception as exc:  # broker away: the sweeper tries again
        logger.warning("could not publish order %s: %s", order_id, exc)
        OutboxMessage.objects.filter(order_id=order_id).update(
            publish_attempts=F("publish_attempts") + 1, last_error=str(exc)[:500]
        )
        return False
    with connection.cursor() as cursor:  # raw: this runs for every order the hot path takes
        cursor.execute("DELETE FROM orders_outboxmessage WHERE order_id = %s", [order_id])
    return True
