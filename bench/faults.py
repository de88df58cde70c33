"""The fault drills' plan, the rig a drill may break, and the faults themselves: each breaks
one part of the stack in the middle of a stampede and returns once that part is back."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.services import PrivateServices
from bench.stack import Stack


@dataclass(frozen=True)
class Plan:
    allocation: int = 150
    buyer_rate: float = 40.0  # buyers a second
    stampede_seconds: float = 10.0
    fault_after: float = 2.0  # seconds into the stampede
    worker_down_seconds: float = 1.0
    legacy_down_seconds: float = 20.0
    redis_down_seconds: float = 2.0
    redis_pause_seconds: float = 8.0
    postgres_down_seconds: float = 3.0
    # A refused buyer tries again with the same key this many times, this far apart.
    buyer_attempts: int = 6
    buyer_retry_pause: float = 1.0
    # An accepted buyer sends the same request again this many times, this far apart after its
    # 202, each on a new connection (an answer the client lost), and must be given the same
    # order: by then the sale may be sold out, and other server processes answering from memory.
    replays: int = 3
    replay_after: float = 0.05
    # In the units-back drill, every this-many-th buyer pays with a declined card.
    decline_every: int = 4
    # The drain ends when every order is final, when nothing moved for `stall_seconds`
    # (what is left will not move by itself), or after `drain_timeout`.
    drain_timeout: float = 150.0
    stall_seconds: float = 95.0
    # The hot path's recovery clocks, shortened so that recovery shows within a drill: a
    # killed worker's messages come back after the visibility timeout, an order whose message
    # was lost is published again after the stall window (swept once a minute). Shorter
    # clocks mean more redeliveries, which the books check counts if they ever place twice.
    clocks: dict[str, str] = field(
        default_factory=lambda: {
            "ORDERS_VISIBILITY_TIMEOUT": "60",
            "ORDERS_UNACKED_RESTORE_SECONDS": "5",
            "ORDERS_STALL_SECONDS": "20",
        }
    )


@dataclass
class Rig:
    """What a drill may break: the stack's processes and the private servers."""

    stack: Stack
    services: PrivateServices
    plan: Plan
    stop: threading.Event = field(default_factory=threading.Event)
    notes: dict = field(default_factory=dict)


def db(action: Callable, *, attempts: int = 40):
    """Runs a query of the drills' own; a connection cut by a restart is opened again."""
    from django.db import InterfaceError, OperationalError, connection

    for attempt in range(attempts):
        try:
            return action()
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return None


# --- faults ------------------------------------------------------------------------------
# Each blocks from the moment it breaks something until that part is back.


def orders_in_progress(product: str) -> int:
    from orders.models import HotOrder, OrderStage, OrderStatus

    return HotOrder.objects.filter(
        product__slug=product, status=OrderStatus.PROCESSING, stage=OrderStage.VALIDATING
    ).count()


def fault_worker_kill(rig: Rig, product: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and db(lambda: orders_in_progress(product)) == 0:
        time.sleep(0.1)
    rig.notes["in_progress_at_kill"] = db(lambda: orders_in_progress(product))
    rig.stack.stop("worker", signal.SIGKILL)
    time.sleep(rig.plan.worker_down_seconds)
    rig.stack.start_worker()


def fault_legacy_down(rig: Rig, product: str) -> None:
    rig.stack.stop("legacy")
    time.sleep(rig.plan.legacy_down_seconds)
    rig.stack.start_legacy()


def fault_redis_restart(rig: Rig, product: str) -> None:
    rig.services.redis.restart(down_seconds=rig.plan.redis_down_seconds)


def fault_redis_pause(rig: Rig, product: str) -> None:
    rig.services.redis.pause(rig.plan.redis_pause_seconds)


def fault_postgres_restart(rig: Rig, product: str) -> None:
    rig.services.postgres.restart(down_seconds=rig.plan.postgres_down_seconds)


def fault_units_back(rig: Rig, product: str) -> None:
    """Nothing is broken: the buyers' declined cards give units back to the sale while it is
    sold out and its sold-out buyers are answered from the hot path's memory. Returns once the
    stampede is over, with how many units came back by then."""
    from orders.models import HotOrder, OrderStage

    rig.stop.wait(max(0.0, rig.plan.stampede_seconds - rig.plan.fault_after))
    declined = HotOrder.objects.filter(product__slug=product, stage=OrderStage.CARD_DECLINED)
    rig.notes["units_back_during_stampede"] = db(declined.count)


# What must be 0 after every drill.


@dataclass(frozen=True)
class Drill:
    name: str
    product: str
    fault: Callable[[Rig, str], None]
    what: str
    decline: bool = False  # every Plan.decline_every-th buyer pays with a declined card
    category: str = "rods"


DRILLS = (
    Drill("worker-sigkill", "muskie-casting-rod", fault_worker_kill, "SIGKILL the worker while it processes"),
    Drill("legacy-api-down", "tourney-casting-rod", fault_legacy_down, "stop the legacy API for 20 s"),
    Drill("redis-restart", "bass-pro-spinning-rod", fault_redis_restart, "restart Redis (broker and cache)"),
    Drill("postgres-restart", "trout-ultralight-rod", fault_postgres_restart, "restart PostgreSQL"),
    Drill("redis-pause", "travel-telescopic-rod", fault_redis_pause, "pause Redis for 8 s: silent, connections open"),
    Drill(
        "units-back",
        "spinning-reel",
        fault_units_back,
        "declined cards give units back to a sold-out sale",
        decline=True,
        category="reels",
    ),
)
