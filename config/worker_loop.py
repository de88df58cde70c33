"""Loops that run beside the tasks in every Celery worker: a thread of the worker's main
process, started when the worker is ready and stopped when it shuts down (the outbox's relay,
the log's consumers, the dashboard's maker).

    class Relay(WorkerLoop):
        def step(self) -> bool:      # True: go again at once (a backlog); False: after `interval`
            ...

    worker_loop_register(lambda: Relay(interval, name="outbox-relay") if interval > 0 else None)

A step that raises (the database or the broker away) is logged and tried again after
`interval`, at least a second; its database connection is closed first, so the next step gets
a fresh one. A step that catches a database error itself (the consumers' pass goes on to the
next consumer) leaves a broken connection behind without raising: before each step the loop
closes a connection that had an error and no longer works, as Django does between requests,
or every later step would fail on it until the worker is restarted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from celery.signals import worker_ready, worker_shutdown
from celery.utils.dispatch import Signal
from django.db import connection
from opentelemetry.instrumentation.utils import suppress_instrumentation

logger = logging.getLogger(__name__)


class WorkerLoop(threading.Thread):
    def __init__(self, interval: float, *, name: str, stop_timeout: float = 5.0):
        super().__init__(daemon=True, name=name)
        self.interval = interval
        self.stop_timeout = stop_timeout
        self.halt = threading.Event()

    def step(self) -> bool:
        """One round of work; True when more is waiting and the next should follow at once."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                try:
                    _connection_checked()
                    # A loop's own calls belong to no request or task: they make no spans. A
                    # publish still carries the trace the step attaches (tracing.context).
                    with suppress_instrumentation():
                        again = self.step()
                except Exception:
                    logger.warning("%s failed; trying again", self.name, exc_info=True)
                    connection.close()
                    self.halt.wait(max(self.interval, 1.0))
                    continue
                if not again:
                    self.halt.wait(self.interval)
        finally:
            connection.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(self.stop_timeout)


def _connection_checked() -> None:
    """Closes this thread's connection if a query on it failed and it no longer works (the
    server restarted or ended the session), as Django does between requests; a connection
    that merely has an age is kept (the loops are no requests: it would be reopened each step)."""
    if connection.connection is None or not connection.errors_occurred:
        return
    if connection.is_usable():
        connection.errors_occurred = False
    else:
        connection.close()


def worker_loop_register(
    make: Callable[[], WorkerLoop | None], *, ready: Signal = worker_ready, shutdown: Signal = worker_shutdown
) -> None:
    """Starts the loop `make()` gives (None: turned off) in each worker once it is ready, once,
    and stops it when the worker shuts down."""
    running: list[WorkerLoop] = []

    def start(**kwargs) -> None:
        if running:
            return
        loop = make()
        if loop is not None:
            loop.start()
            running.append(loop)

    def stop(**kwargs) -> None:
        while running:
            running.pop().stop()

    ready.connect(start, weak=False)
    shutdown.connect(stop, weak=False)
