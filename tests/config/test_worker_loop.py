"""The loops beside the tasks in every worker (relay, consumers, dashboard maker): a backlog is
worked at once, a failing step is tried again after a pause, and the worker's signals start
one loop per worker and stop it."""

from __future__ import annotations

import threading

from celery.utils.dispatch import Signal

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
