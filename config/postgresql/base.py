"""Django's PostgreSQL backend with a health check that costs no round trip.

A kept connection (CONN_MAX_AGE) is checked before each request uses it (CONN_HEALTH_CHECKS),
so that a restarted database costs no request an error. Django checks with `SELECT 1`: a round
trip for every request, a third of what a sold-out answer cost. An idle connection to a server
that is still there has nothing to read; a server that ended the session (a restart, an
administrator) has sent its goodbye or closed the socket, which makes it readable. So a
readable socket, and only that, is checked the full way."""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLDatabaseWrapper


class DatabaseWrapper(PostgreSQLDatabaseWrapper):
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
