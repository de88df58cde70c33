"""The legacy backend's capacity limit, shared by every process of the service, and its load figures.

The order backend can work on only LEGACY_CAPACITY orders at once, across all its processes
(several gunicorn workers, or Lambda instances). An order must hold a slot while it is worked
on; when none is free the request is shed at once (503, Retry-After) rather than queued, as the
real backend would fall over. Replays of known orders need no slot.

With REDIS_URL the slots are Redis keys taken with SET NX PX, each naming the process that holds
it and its machine: when a gunicorn worker dies (SIGKILL, out of memory, timeout) the master's
`child_exit` hook (config/gunicorn.py) frees its slots at once; a server started again on a
machine frees the slots of that machine's processes that are gone (the whole server killed,
master and all: else it shed every order until their leases ended); and the lease frees those
of a machine that died whole. Without Redis they are fcntl locks on files under VAR_DIR/legacy-slots, which the
kernel drops when the process dies.

The figures (requests in flight, the highest number ever in flight, requests shed) count every
order request before shedding, so a caller that sends more than the capacity shows up in
`peak_inflight`; the hot path and the benchmark read them to prove they never do.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Longer than any order can take (gunicorn's timeout is 60 s): only a dead holder loses it.
SLOT_LEASE_MS = 90_000
# A request counted in flight by a process that died stops counting after this.
INFLIGHT_LEASE_MS = 120_000
RETRY_AFTER_SECONDS = 1
# Each caller (named by its token) is also counted on its own, so the hot path's workers can
# be shown to stay within their share while the storefront's own checkouts come in beside them.
CALLERS = ("storefront", "hotpath", "merchant")


class OverCapacity(Exception):
    """Every slot is taken: the request is shed."""

    retry_after = RETRY_AFTER_SECONDS


class GateUnavailable(OverCapacity):
    """The gate itself cannot be reached (Redis away): the load is unknown, so the request is
    shed as if every slot were taken, and the answer says why."""


class Backend(Protocol):
    def slot_acquire(self, capacity: int) -> Any | None: ...
    def slot_release(self, handle: Any) -> None: ...
    def request_enter(self) -> str: ...
    def request_exit(self, token: str) -> None: ...
    def shed_record(self) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def stats_reset(self) -> None: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


def _process_name(pid: int) -> str:
    """A process among the servers sharing one Redis: its id and its machine's name."""
    return f"{pid}@{socket.gethostname()}"


def _process_runs(pid: int) -> bool:
    """Whether process `pid` of this machine still runs: a zombie (killed, not yet reaped by a
    parent that died too) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it runs
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:  # no /proc: what kill said
        return True


# --- Redis ----------------------------------------------------------------------------

_SLOT_ACQUIRE = """
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then return KEYS[i] end
end
return false
"""
_SLOT_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Frees the slots among KEYS whose holder is the process ARGV[1] ("<pid>@<host>:<token>" values).
_SLOTS_OF_PROCESS_RELEASE = """
local freed = 0
for i = 1, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and string.sub(holder, 1, string.len(ARGV[1])) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    freed = freed + 1
  end
end
return freed
"""
_ENTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(redis.call('HGET', KEYS[2], 'peak_inflight') or '0') then
  redis.call('HSET', KEYS[2], 'peak_inflight', n)
end
return n
"""
_READ = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if ARGV[2] == 'reset' then
  redis.call('HSET', KEYS[2], 'peak_inflight', n, 'shed', 0)
end
local figures = redis.call('HMGET', KEYS[2], 'peak_inflight', 'shed')
return {n, tonumber(figures[1] or '0'), tonumber(figures[2] or '0')}
"""


class RedisBackend:
    """Slots and figures in Redis, shared by every process that uses the same database."""

    # One hash tag, so that every key of a script lives in the same Redis Cluster slot.
    prefix = "{legacy_api}:"

    def __init__(self, url: str, *, lease_ms: int = SLOT_LEASE_MS, namespace: str = ""):
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.lease_ms = lease_ms
        self.prefix = f"{self.prefix}{namespace}"
        self.inflight_key = f"{self.prefix}inflight"
        self.stats_key = f"{self.prefix}stats"
        self._acquire = self.client.register_script(_SLOT_ACQUIRE)
        self._release = self.client.register_script(_SLOT_RELEASE)
        self._enter = self.client.register_script(_ENTER)
        self._read = self.client.register_script(_READ)

    def slot_key(self, index: int) -> str:
        return f"{self.prefix}slot:{index}"

    def slot_acquire(self, capacity: int) -> tuple[str, str] | None:
        token = f"{_process_name(os.getpid())}:{secrets.token_hex(8)}"
        key = self._acquire(keys=[self.slot_key(i) for i in range(capacity)], args=[token, self.lease_ms])
        return (key.decode(), token) if key else None

    def slot_release(self, handle: tuple[str, str]) -> None:
        key, token = handle
        self._release(keys=[key], args=[token])

    def slots_release_of_process(self, pid: int) -> int:
        """Frees every slot the process `pid` holds (it has died); how many were freed."""
        keys = sorted(key.decode() for key in self.client.scan_iter(match=f"{self.prefix}slot:*", count=1000))
        if not keys:
            return 0
        return int(self.client.eval(_SLOTS_OF_PROCESS_RELEASE, len(keys), *keys, f"{_process_name(pid)}:"))

    def slots_release_of_gone_processes(self) -> int:
        """Frees every slot held by a process of this machine that no longer runs; how many."""
        freed = 0
        host = f"@{socket.gethostname()}:"
        for key in self.client.scan_iter(match=f"{self.prefix}slot:*", count=1000):
            holder = (self.client.get(key) or b"").decode()
            pid, at, _ = holder.partition("@")
            if at and holder[len(pid) :].startswith(host) and pid.isdigit() and not _process_runs(int(pid)):
                freed += int(self._release(keys=[key.decode()], args=[holder]))
        return freed

    def request_enter(self) -> str:
        token = secrets.token_hex(8)
        self._enter(keys=[self.inflight_key, self.stats_key], args=[_now_ms(), INFLIGHT_LEASE_MS, token])
        return token

    def request_exit(self, token: str) -> None:
        self.client.zrem(self.inflight_key, token)

    def shed_record(self) -> None:
        self.client.hincrby(self.stats_key, "shed", 1)

    def stats(self) -> dict[str, int]:
        return self._figures(reset=False)

    def stats_reset(self) -> None:
        self._figures(reset=True)

    def _figures(self, *, reset: bool) -> dict[str, int]:
        inflight, peak, shed = self._read(
            keys=[self.inflight_key, self.stats_key], args=[_now_ms(), "reset" if reset else ""]
        )
        return {"inflight": int(inflight), "peak_inflight": int(peak), "shed": int(shed)}


# --- Files ----------------------------------------------------------------------------


class FileBackend:
    """Slots as fcntl locks on files, figures in a JSON file: shared by the processes of one machine."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.directory / "stats.json"
        self.stats_lock_path = self.directory / "stats.lock"

    def slot_path(self, index: int) -> Path:
        return self.directory / f"slot-{index}.lock"

    def slot_acquire(self, capacity: int) -> int | None:
        for index in range(capacity):
            fd = os.open(self.slot_path(index), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # flock locks belong to the open file, not the process: two threads of one
                # process exclude each other too.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def slot_release(self, handle: int) -> None:
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    def request_enter(self) -> str:
        token = secrets.token_hex(8)
        with self._state() as state:
            state["inflight"][token] = _now_ms() + INFLIGHT_LEASE_MS
            state["peak_inflight"] = max(state["peak_inflight"], len(state["inflight"]))
        return token

    def request_exit(self, token: str) -> None:
        with self._state() as state:
            state["inflight"].pop(token, None)

    def shed_record(self) -> None:
        with self._state() as state:
            state["shed"] += 1

    def stats(self) -> dict[str, int]:
        with self._state() as state:
            return {"inflight": len(state["inflight"]), "peak_inflight": state["peak_inflight"], "shed": state["shed"]}

    def stats_reset(self) -> None:
        with self._state() as state:
            state["peak_inflight"] = len(state["inflight"])
            state["shed"] = 0

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The figures, read and written back under an exclusive lock."""
        with open(self.stats_lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.stats_path.read_text())
            except (FileNotFoundError, ValueError):
                state = {}
            state = {
                "inflight": dict(state.get("inflight") or {}),
                "peak_inflight": int(state.get("peak_inflight") or 0),
                "shed": int(state.get("shed") or 0),
            }
            now = _now_ms()
            state["inflight"] = {token: until for token, until in state["inflight"].items() if until > now}
            yield state
            scratch = self.stats_path.with_suffix(f".{os.getpid()}.tmp")
            scratch.write_text(json.dumps(state))
            os.replace(scratch, self.stats_path)


# --- The service's limiter ---------------------------------------------------------------


def backend() -> Backend:
    """The backend the settings ask for: Redis when REDIS_URL is set, else files under VAR_DIR."""
    return _backend(settings.REDIS_URL, str(settings.VAR_DIR))


@functools.cache
def _backend(redis_url: str, var_dir: str, caller: str = "") -> Backend:
    if redis_url:
        return RedisBackend(redis_url, namespace=f"caller:{caller}:" if caller else "")
    return FileBackend(Path(var_dir) / "legacy-slots" / (f"caller-{caller}" if caller else ""))


def _caller_backend(caller: str) -> Backend:
    return _backend(settings.REDIS_URL, str(settings.VAR_DIR), caller)


@contextmanager
def slot(caller: str | None = None) -> Iterator[None]:
    """Holds one of the LEGACY_CAPACITY slots while an order is worked on, or raises OverCapacity
    (counted as shed in all, and for its caller when it is a known one)."""
    limiter = backend()
    try:
        handle = limiter.slot_acquire(settings.LEGACY_CAPACITY)
    except redis.RedisError:
        # Without its gate the backend cannot know its load: shedding is the safe answer.
        logger.exception("capacity gate unavailable; shedding the request")
        _shed_record(caller)
        raise GateUnavailable from None
    if handle is None:
        _shed_record(caller)
        raise OverCapacity
    try:
        yield
    finally:
        _quietly(limiter.slot_release, handle)


def _shed_record(caller: str | None) -> None:
    _quietly(backend().shed_record)
    if caller in CALLERS:
        _quietly(_caller_backend(caller).shed_record)


@contextmanager
def in_flight(caller: str | None = None) -> Iterator[None]:
    """Counts an order request as in flight for the figures, from arrival to answer, in all
    and for its caller (the token's) when it is a known one."""
    counters = [backend()]
    if caller in CALLERS:
        counters.append(_caller_backend(caller))
    tokens = [(counter, _quietly(counter.request_enter)) for counter in counters]
    try:
        yield
    finally:
        for counter, token in tokens:
            if token is not None:
                _quietly(counter.request_exit, token)


def slots_release_of_process(pid: int, *, redis_url: str) -> int:
    """Frees the slots of a process that has died, for a supervisor outside Django (gunicorn's
    master): without this they would stay taken until their lease ends, shedding orders the
    backend could take."""
    limiter = RedisBackend(redis_url)
    try:
        return limiter.slots_release_of_process(pid)
    finally:
        limiter.client.close()


def slots_release_of_gone_processes(*, redis_url: str) -> int:
    """Frees the slots of this machine's processes that no longer run, for a server starting
    (gunicorn's master): a server killed whole, master and all, left them to their leases."""
    limiter = RedisBackend(redis_url)
    try:
        return limiter.slots_release_of_gone_processes()
    finally:
        limiter.client.close()


def stats() -> dict:
    callers = {}
    for caller in CALLERS:
        figures = _caller_backend(caller).stats()
        callers[caller] = {key: figures[key] for key in ("inflight", "peak_inflight", "shed")}
    return {"capacity": settings.LEGACY_CAPACITY, **backend().stats(), "callers": callers}


def stats_reset() -> dict:
    backend().stats_reset()
    for caller in CALLERS:
        _caller_backend(caller).stats_reset()
    return stats()


def _quietly(action, *args):
    """The figures are for observers: losing one must not fail an order."""
    try:
        return action(*args)
    except (redis.RedisError, OSError):
        logger.exception("legacy capacity figures could not be updated")
        return None
