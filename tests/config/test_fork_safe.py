"""A lock taken by a process's threads is never handed to a forked child held
(config.fork_safe): a Celery worker's main process forks a new pool child whenever one dies,
while its relay and consumers open database connections under such a lock, and a child forked
at that moment hung for ever on its first connection, with an order in it."""

from __future__ import annotations

import os
import threading
import time

import pytest

from config.fork_safe import fork_safe_lock
from config.postgresql import base
from readmodels import answers


def child_takes(lock: threading.Lock) -> bool:
    """Forks while another thread is inside a `with lock:` block; whether the child could then
    take the lock itself."""
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            inside.set()
            leave.wait(10)
            time.sleep(0.2)  # still inside when the fork is asked for

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    leave.set()
    pid = os.fork()
    if pid == 0:  # the child: nothing but the lock, then out
        os._exit(0 if lock.acquire(timeout=5) else 1)
    holder.join()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    "lock",
    [
        pytest.param(lambda: fork_safe_lock(), id="fork_safe_lock"),
        pytest.param(lambda: base._opened_lock, id="the database connections' list"),
        pytest.param(lambda: answers._lock, id="the dashboard's answer counts"),
    ],
)
def test_a_child_forked_while_a_thread_holds_the_lock_can_take_it(lock):
    assert child_takes(lock())


def test_a_plain_lock_is_inherited_held_which_is_what_is_avoided():
    # The hazard itself, shown with the same steps: were it not there, the test above could
    # not fail.
    assert not child_takes(threading.Lock())


def test_the_parent_goes_on_with_the_lock_free():
    lock = fork_safe_lock()
    assert child_takes(lock)
    assert lock.acquire(blocking=False)
    lock.release()
