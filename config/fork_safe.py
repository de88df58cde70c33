"""Locks that a forked process never inherits held.

A process that forks while one of its threads holds a lock hands its child a copy of that lock,
held, with no thread in the child to release it: the child's first `with lock:` waits for ever.
Celery's prefork pool forks a new child whenever one dies or is recycled, from a main process
whose own threads (the outbox's relay, the log's consumers, the dashboard's maker) open
database connections and count answers all the time. A child forked at the wrong moment hung on
its first task, and the order in it waited for the stalled-order sweep.

So a lock taken by such threads is taken around every fork: the fork waits for the holder to
leave its block (each block here is short and waits for nothing the forking thread holds), and
both sides release it after, so each process goes on with a lock that is free and data that no
block was half-way through changing."""

from __future__ import annotations

import os
import threading


def fork_safe_lock() -> threading.Lock:
    """A `threading.Lock` held by no block while the process forks: the child gets it free."""
    lock = threading.Lock()
    if hasattr(os, "register_at_fork"):  # POSIX: every os.fork, billiard's and gunicorn's too
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release)
    return lock
