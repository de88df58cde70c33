"""The outbox's relay in each Celery worker (a `config.worker_loop.WorkerLoop`): publishes the
outbox's rows as soon as they are committed (`orders.outbox.outbox_relay`). An idle relay
looks again every ORDERS_OUTBOX_RELAY_SECONDS; a busy one goes on at once. 0 turns it off
(the beat sweep still publishes, after ORDERS_OUTBOX_GRACE_SECONDS)."""

from __future__ import annotations

import logging

from django.conf import settings

from config.worker_loop import WorkerLoop, worker_loop_register
from orders.outbox import outbox_relay

logger = logging.getLogger(__name__)

BATCH = 500


class OutboxRelay(WorkerLoop):
    def step(self) -> bool:
        return outbox_relay(limit=BATCH) >= BATCH


def _relay() -> OutboxRelay | None:
    interval = settings.ORDERS_OUTBOX_RELAY_SECONDS
    if interval <= 0:
        return None
    logger.info("outbox relay started (every %.3f s when idle)", interval)
    return OutboxRelay(interval, name="outbox-relay")


worker_loop_register(_relay)
