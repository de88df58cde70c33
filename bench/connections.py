"""The database connections each process of a part of the stack holds, read from /proc: the
sockets a process has open (its file descriptors) that are established TCP connections to
the database's port. The benchmark reports the hot path's after the warm-up and after the
stampedes, so that a process that opens its connections in a measured window, or keeps
those of threads that have ended, shows in the figures."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from procs import proc_stats

ESTABLISHED = "01"


def database_port(database_url: str) -> int:
    return urlsplit(database_url).port or 5432


def sockets_to(port: int) -> set[str]:
    """The inodes of the machine's established TCP connections to `port` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                next(file, None)  # the header
                for line in file:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == ESTABLISHED and int(fields[2].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def process_connections(pid: int, inodes: set[str]) -> int:
    """How many of `inodes` process `pid` holds open; 0 for a process that is gone."""
    count = 0
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def group_connections(group: int, port: int) -> list[int]:
    """The connections to `port` of each process in process group `group` (a part of the
    stack: its server and the processes it forked), the most first."""
    inodes = sockets_to(port)
    pids = [int(os.path.basename(path)) for path, _name, fields in proc_stats() if int(fields[2]) == group]
    return sorted((process_connections(pid, inodes) for pid in pids), reverse=True)
