"""The outbox's relay in each Celery worker: a thread of the worker's main process, started
when the worker is ready and stopped when it shuts down, that publishes the outbox's rows as
soon as they are committed (`orders.outbox.outbox_relay`). An idle relay looks again every
ORDERS_OUTBOX_RELAY_SECONDS; a busy one goes on at once. 0 turns it off (the beat sweep still
publishes, after ORDERS_OUTBOX_GRACE_SECONDS)."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection

from orders.outbox import outbox_relay

logger = logging.getLogger(__name__)

BATCH = 500


class OutboxRelay(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(daemon=True, name="outbox-relay")
        self.interval = interval
        self.halt = threading.Event()
        self.published = 0

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                try:
                    sent = outbox_relay(limit=BATCH)
                except Exception:  # the database or the broker is away: try again shortly
                    logger.warning("outbox relay failed; trying again", exc_info=True)
                    connection.close()
                    self.halt.wait(max(self.interval, 1.0))
                    continue
                self.published += sent
                if sent < BATCH:
                    self.halt.wait(self.interval)
        finally:
            connection.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.halt.set()
        self.join(timeout)


_relay: OutboxRelay | None = None


@worker_ready.connect
def relay_start(**kwargs) -> None:
    global _relay
    interval = settings.ORDERS_OUTBOX_RELAY_SECONDS
    if interval <= 0 or _relay is not None:
        return
    _relay = OutboxRelay(interval)
    _relay.start()
    logger.info("outbox relay started (every %.3f s when idle)", interval)


@worker_shutdown.connect
def relay_stop(**kwargs) -> None:
    global _relay
    if _relay is not None:
        _relay.stop()
        _relay = None
