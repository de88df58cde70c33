"""Consumers the tests register by dotted path, as EVENT_CONSUMERS would name real ones."""

from __future__ import annotations

import os
import signal

from events.models import Event
from events.services import event_append

# Positions the `collect` consumer was given, in order (this process only).
seen: list[int] = []
# position -> failures still to raise, for `flaky`.
failures: dict[int, int] = {}
# The `tally` consumer dies with Crash on its Nth event of this process (0: never).
crash_at = {"n": 0, "seen": 0}


class Crash(BaseException):
    """What a dying process looks like from inside: nothing catches it as an error."""


def collect(event: Event) -> None:
    seen.append(event.position)


def even_only(event: Event) -> None:
    seen.append(event.position)


even_only.wants = lambda event: event.position % 2 == 0


def picky(event: Event) -> None:
    seen.append(event.position)


def _picky_wants(event: Event) -> bool:
    """Fails, as `flaky` does, on an event it cannot read (a field it expects is missing)."""
    if failures.get(event.position, 0) > 0:
        failures[event.position] -= 1
        raise KeyError("on_hand")
    return True


picky.wants = _picky_wants


def flaky(event: Event) -> None:
    if failures.get(event.position, 0) > 0:
        failures[event.position] -= 1
        raise RuntimeError(f"cannot take event {event.position} yet")
    seen.append(event.position)


def tally(event: Event) -> None:
    """Counts each sale event with an event of its own, in the same database and transaction."""
    if event.source == "tally":
        return
    crash_at["seen"] += 1
    kill_at = int(os.environ.get("TALLY_KILL_AT", "0"))
    if kill_at and crash_at["seen"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if crash_at["n"] and crash_at["seen"] == crash_at["n"]:
        raise Crash(f"died at event {event.position}")
    event_append(
        source="tally",
        detail_type="Tally",
        type="TALLY",
        subtype="COUNTED",
        status="DONE",
        data={"counted": event.position},
    )


def append_elsewhere(event: Event) -> None:
    """For each event but its own: another process commits a new one meanwhile."""
    import threading

    from django.db import connection

    if event.source == "later":
        return

    def elsewhere() -> None:
        try:
            later.append(
                event_append(source="later", detail_type="Later", type="T", subtype="S", status="X", data={}).position
            )
        finally:
            connection.close()

    writer = threading.Thread(target=elsewhere)
    writer.start()
    writer.join()


# Positions `append_elsewhere` had committed meanwhile.
later: list[int] = []
