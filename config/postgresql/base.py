"""Django's PostgreSQL backend with a health check that costs no round trip, and whose
connections do not outlive their threads.

A kept connection (CONN_MAX_AGE) is checked before each request uses it (CONN_HEALTH_CHECKS),
so that a restarted database costs no request an error. Django checks with `SELECT 1`: a round
trip for every request, a third of what a sold-out answer cost. An idle connection to a server
that is still there has nothing to read; a server that ended the session (a restart, an
administrator) has sent its goodbye or closed the socket, which makes it readable. So a
readable socket, and only that, is checked the full way.

Django keeps a connection per thread, closed at the end of a request only when its age has
run out (CONN_MAX_AGE=none: never). A server that ends idle threads (granian, after its
`--blocking-threads-idle-timeout`) leaves their connections open with nobody to close them:
a hot path process of 4 threads held 6 connections after two stampedes, more after each
quiet spell, until the database refuses new ones. So each new connection first closes those
of the threads that have ended (Linux's /proc tells which have; elsewhere nothing is closed)."""

from __future__ import annotations

import os
import select
import threading

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper

from config.fork_safe import fork_safe_lock

_TASKS = "/proc/self/task"
# Every connection this process opened and has not seen closed, with the process and the
# thread that opened it: (pid, the thread's native id, its start time, the psycopg connection).
_opened: list[tuple[int, int, str | None, object]] = []
# Taken by the threads of a process that forks (a Celery worker's main process): never
# inherited held (config.fork_safe).
_opened_lock = fork_safe_lock()


def _thread_started(native_id: int) -> str | None:
    """The thread's start time (field 22 of its stat), which tells it from a later thread
    given the same id; None once it has ended."""
    try:
        with open(f"{_TASKS}/{native_id}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def orphans_close() -> int:
    """Closes the connections whose thread has ended; returns how many. Those a forked process
    inherited are forgotten, never closed: they are its parent's (closing one would end the
    parent's session)."""
    if not os.path.isdir(_TASKS):
        return 0
    pid, closed = os.getpid(), 0
    with _opened_lock:
        kept = []
        for entry in _opened:
            opener, native_id, started, raw = entry
            if opener != pid or raw.closed:
                continue
            if started is None or _thread_started(native_id) == started:
                kept.append(entry)  # its thread lives (or cannot be told apart): its own
                continue
            raw.close()  # its thread has ended: nobody else uses it
            closed += 1
        _opened[:] = kept
    return closed


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
    def get_new_connection(self, conn_params):
        orphans_close()
        raw = super().get_new_connection(conn_params)
        native_id = threading.get_native_id()
        with _opened_lock:
            _opened.append((os.getpid(), native_id, _thread_started(native_id), raw))
        return raw

    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        try:
            readable, _, _ = select.select([self.connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if readable:  # a goodbye, a notification or EOF: ask the server
            return super().is_usable()
        return True
