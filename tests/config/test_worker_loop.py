"""The loops beside the tasks in every worker (relay, consumers, dashboard maker): a backlog is
worked at once, a failing step is tried again after a pause, and the worker's signals start
one loop per worker and stop it."""

from __future__ import annotations

import threading

import pytest
from celery.utils.dispatch import Signal
from django.db import DatabaseError, connection

from config.worker_loop import WorkerLoop, worker_loop_register
from tests.conftest import eventually


class Scripted(WorkerLoop):
    """Steps through `answers`: True (more waiting), False (idle), or an exception to raise."""

    def __init__(self, answers, *, interval: float):
        super().__init__(interval, name="scripted")
        self.answers, self.steps, self.done = list(answers), 0, threading.Event()

    def step(self) -> bool:
        self.steps += 1
        if not self.answers:
            self.done.set()
            return False
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_backlog_is_worked_at_once_and_an_idle_loop_waits_its_interval():
    loop = Scripted([True, True, True], interval=60)
    loop.start()
    try:
        assert loop.done.wait(5), "three backlog steps and the fourth did not follow at once"
        assert loop.steps == 4
        loop.done.clear()
        assert not loop.done.wait(0.3) and loop.steps == 4  # idle: waiting out its minute
    finally:
        loop.stop()
    assert not loop.is_alive()


def test_a_failing_step_is_logged_and_tried_again_after_a_pause(caplog):
    loop = Scripted([RuntimeError("database away"), True], interval=0.05)
    loop.start()
    try:
        assert loop.done.wait(5), "the loop did not go on after a failure"
    finally:
        loop.stop()
    assert loop.steps == 3
    assert "scripted failed; trying again" in caplog.text and "database away" in caplog.text


def test_the_workers_signals_start_one_loop_each_and_stop_it():
    made: list[Scripted] = []

    def make():
        made.append(Scripted([], interval=60))
        return made[-1]

    off: list[object] = []
    # Signals of the test's own: the worker's would start this process's real loops too.
    worker_ready, worker_shutdown = Signal(name="worker_ready"), Signal(name="worker_shutdown")
    worker_loop_register(make, ready=worker_ready, shutdown=worker_shutdown)
    worker_loop_register(lambda: off.append(1), ready=worker_ready, shutdown=worker_shutdown)  # turned off
    try:
        worker_ready.send(sender=None)
        worker_ready.send(sender=None)  # ready twice (a restart of the consumer): still one loop
        assert len(made) == 1 and off == [1, 1]
        eventually(lambda: made[0].steps == 1, timeout=5)
    finally:
        worker_shutdown.send(sender=None)
    assert not made[0].is_alive()


def test_a_step_runs_with_tracing_instrumentation_suppressed():
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    class Watching(WorkerLoop):
        def __init__(self):
            super().__init__(60, name="watching")
            self.seen, self.done = [], threading.Event()

        def step(self) -> bool:
            self.seen.append(is_instrumentation_enabled())
            self.done.set()
            return False

    loop = Watching()
    loop.start()
    try:
        assert loop.done.wait(5)
    finally:
        loop.stop()
    # Its queries and cache calls would each start a trace of their own, or cost a span each.
    assert loop.seen == [False]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_step_that_swallows_a_lost_connection_gets_a_fresh_one_at_its_next_step():
    """As the consumers' pass does (events.runner: one consumer's failure is logged, the others
    go on): the server ending the loop's session (a PostgreSQL restart) left the thread's
    connection closed, and every later step failed on it until the worker was restarted."""

    class Swallowing(WorkerLoop):
        def __init__(self):
            super().__init__(0.05, name="swallowing")
            self.outcomes: list[int | str] = []

        def step(self) -> bool:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.outcomes.append(cursor.fetchone()[0])
            except DatabaseError:
                self.outcomes.append("error")
            return False

    loop = Swallowing()
    loop.start()
    try:
        eventually(lambda: loop.outcomes and isinstance(loop.outcomes[-1], int), timeout=5)
        first = loop.outcomes[-1]
        with connection.cursor() as cursor:  # the test's own session ends the loop's
            cursor.execute("SELECT pg_terminate_backend(%s)", [first])
        eventually(lambda: "error" in loop.outcomes, timeout=5, message="the ended session was not noticed")
        eventually(
            lambda: isinstance(loop.outcomes[-1], int) and loop.outcomes[-1] != first,
            timeout=5,
            message=f"the loop kept failing on its dead connection: {loop.outcomes[-5:]}",
        )
    finally:
        loop.stop()
