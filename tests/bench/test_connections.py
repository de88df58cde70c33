"""The benchmark counts each process's connections to the database from /proc, to show that
every thread of the hot path holds its connection after the warm-up and that none are opened
or left behind later (bench.connections)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings

from bench.connections import database_port, group_connections

CHILD = """
import subprocess, sys, psycopg
idle = subprocess.Popen(["sleep", "60"])  # a member of the group that holds none
held = [psycopg.connect(sys.argv[1]) for _ in range(3)]
print("ready", flush=True)
for line in sys.stdin:
    held.pop().close()
    print("ready", flush=True)
idle.kill()
"""


@pytest.mark.postgres
def test_a_process_groups_connections_are_counted_per_process_as_they_open_and_close():
    db = settings.DATABASES["default"]
    conninfo = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    port = int(db["PORT"] or 5432)
    # A process of a group of its own, as each part of the benchmark's stack is, with a child
    # of its own that holds none.
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, conninfo],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        assert group_connections(child.pid, port) == [3, 0]
        child.stdin.write("close one\n")
        child.stdin.flush()
        assert child.stdout.readline() == "ready\n"
        assert group_connections(child.pid, port) == [2, 0]
        assert group_connections(child.pid, port + 1) == [0, 0]  # another port's are not counted
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_the_databases_port_is_read_from_its_url():
    assert database_port("postgres://postgres@127.0.0.1:5433/shop") == 5433
    assert database_port("postgres://postgres@db.internal/shop") == 5432
