"""The stampede, repeated: each round opens a fresh sale of the same size, browses the idle
shop, runs the stampede through the route and drains its orders.

A round's browsing p99s and its drain are single readings of one window (240 page views, one
queue of 400 orders), and one window can read a fifth off the next. So, like the other speed
figures, each is the median of the rounds', every round's value in `spread.stampede_rounds`,
and the books must hold in every round: their counts are summed over the rounds.

The merchant's dashboard is pictured in a round of its own after those (`picture`): Chromium,
which takes the picture, stands for a browser on a machine of its own yet runs on the shop's
cores, so its round is reported and its books kept, but it is not one of the repetitions the
medians are taken over. A run of a single round (`--quick`) pictures that round."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.books import drain_and_check, hold_check, key_units_sold, log_check, payments_check
from bench.dashboard import consumers_cpu, consumers_cpu_reset, views_check
from bench.loadgen import RunResult, open_loop_apart
from bench.nginx import edge_p99_ms
from bench.phases import BROWSE_PATHS, Profile, cores_since, stampede, waiting_share
from bench.sales import HOT_PRODUCT
from bench.shoppers import accepted_numbers, browse_request
from bench.stack import Stack

# The books each round keeps on its own, summed over the rounds (each 0 when they hold).
ROUND_BOOKS = ("oversold", "lost", "duplicates", "hold_drift", "log_mismatched")


@dataclass
class StampedeRound:
    idle: RunResult
    idle_waiting: dict | None
    on: dict
    books: dict
    # The same p99s as nginx logged them (bench.nginx.edge_p99_ms).
    at_edge: dict = field(default_factory=dict)
    # Chromium took the dashboard's picture during this round's stampede.
    picture: bool = False

    @property
    def browse_p99_ms_idle(self) -> float:
        return self.idle.percentile(99)

    @property
    def browse_p99_ms_stampede(self) -> float:
        return self.on["results"]["browse"].percentile(99)

    def consumer_lag_p99_seconds(self) -> float | None:
        lags = self.books.get("consumer_lag") or {}
        return max((lag["p99_seconds"] for lag in lags.values() if isinstance(lag, dict)), default=None)


def stampede_round(stack: Stack, profile: Profile, *, screenshot: Path | None = None) -> StampedeRound:
    """One round on a quiet machine with the hot product's sale open: the shoppers browse the
    idle shop, then the stampede comes through the route, then its orders drain and the books
    are checked."""
    units_before = key_units_sold([HOT_PRODUCT])
    idle_since, idle_wait_before, idle_started = time.time(), stack.runqueue_seconds(), time.monotonic()
    idle = open_loop_apart(
        "browse-idle",
        browse_request(stack.url("edge", ""), BROWSE_PATHS),
        rate=profile.browse_rate,
        duration=profile.idle_seconds,
        threads=8,
    )
    idle_until = time.time()
    idle_waiting = waiting_share(idle_wait_before, stack.runqueue_seconds(), time.monotonic() - idle_started)

    consumers_cpu_reset()
    on = stampede(stack, profile, label="route on", run=f"on{time.time_ns()}", screenshot=screenshot)
    consumers_cpu_on = consumers_cpu()
    time.sleep(1.2)  # nginx writes its log once a second
    # The same p99s as nginx saw them: the servers' part of what the shoppers waited.
    at_edge = {
        "browse_p99_ms_idle_at_edge": edge_p99_ms(stack, BROWSE_PATHS, since=idle_since, until=idle_until),
        "browse_p99_ms_stampede_at_edge": edge_p99_ms(stack, BROWSE_PATHS, **on["wall"]),
    }
    numbers = accepted_numbers(on["results"]["buyers"])
    load_end = datetime.fromtimestamp(on["load_until"], tz=UTC)
    books = drain_and_check(
        numbers, [HOT_PRODUCT], drain_timeout=profile.drain_timeout, stampede_end=load_end, units_before=units_before
    )
    books["cores_busy_after_stampede"] = cores_since(stack, on["load_cpu"], since=on["load_until"])
    books.update(hold_check(stack, HOT_PRODUCT))
    books.update(payments_check(stack))
    books.update(log_check(numbers))
    books["consumer_lag"] = on["consumer_lag"]
    books["consumers_cpu_seconds"] = consumers_cpu_on
    books["views_check"] = views_check(stack)
    return StampedeRound(
        idle=idle, idle_waiting=idle_waiting, on=on, books=books, at_edge=at_edge, picture=screenshot is not None
    )


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def repetitions(rounds: list[StampedeRound]) -> list[StampedeRound]:
    """The rounds the medians are taken over: all but the dashboard's picture round, unless
    that is all there is."""
    return [r for r in rounds if not r.picture] or rounds


def median_round(rounds: list[StampedeRound]) -> StampedeRound:
    """Of the repetitions, the round whose stampede browsing p99 is the median (the lower
    middle of an even count): its timelines, phases and cores are the ones reported and plotted."""
    ordered = sorted(repetitions(rounds), key=lambda r: r.browse_p99_ms_stampede)
    return ordered[(len(ordered) - 1) // 2]


def round_row(r: StampedeRound, legacy_rate: float | None) -> dict:
    """One round's own figures, for the spread."""
    idle, stampede, drain = r.browse_p99_ms_idle, r.browse_p99_ms_stampede, r.books.get("drain_rate")
    return {
        "browse_p99_ms_idle": _r(idle),
        "browse_p99_ms_stampede": _r(stampede),
        "browse_ratio": round(stampede / idle, 2) if idle else None,
        "browse_p99_ms_idle_at_edge": r.at_edge.get("browse_p99_ms_idle_at_edge"),
        "browse_p99_ms_stampede_at_edge": r.at_edge.get("browse_p99_ms_stampede_at_edge"),
        "drain_rate": drain,
        "drain_rate_vs_capacity": round(drain / legacy_rate, 2) if drain is not None and legacy_rate else None,
        "drain_rate_during_stampede": r.books.get("drain_rate_during_stampede"),
        "drain_rate_after_stampede": r.books.get("drain_rate_after_stampede"),
        "legacy_busy_vs_capacity": _busy(r.books.get("legacy_rate_all_callers"), legacy_rate),
        "completed_after_stampede": r.books.get("completed_after_stampede"),
        "consumer_lag_p99_seconds": r.consumer_lag_p99_seconds(),
        "accepted": r.books.get("accepted"),
        "picture": r.picture,
        **{key: r.books.get(key) for key in ROUND_BOOKS},
    }


def _busy(rate: float | None, legacy_rate: float | None) -> float | None:
    """Every caller's orders the legacy API placed a second over the drain's window, against
    its calibrated capacity: how busy the workers and the storefront's checkouts kept it."""
    return round(rate / legacy_rate, 2) if rate is not None and legacy_rate else None


def _spread(rows: list[dict], key: str) -> dict:
    values = [row[key] for row in rows]
    present = [v for v in values if v is not None]
    return {"min": min(present, default=None), "max": max(present, default=None), "values": values}


def rounds_figures(rounds: list[StampedeRound], legacy_rate: float | None) -> dict:
    """The figures the rounds make together, to lay over those `bench.report.figures` made of
    the median round: the medians of the repetitions, the books summed over every round, and
    every round's values (the picture round's marked)."""
    rows = [round_row(r, legacy_rate) for r in rounds]
    measured = repetitions(rounds)
    reps = [round_row(r, legacy_rate) for r in measured]
    idle = _median([r.browse_p99_ms_idle for r in measured])
    stampede = _median([r.browse_p99_ms_stampede for r in measured])
    drain = _median([r.books.get("drain_rate") for r in measured])
    during = _median([row["drain_rate_during_stampede"] for row in reps])
    after = _median([row["drain_rate_after_stampede"] for row in reps])
    busy = _median([r.books.get("legacy_rate_all_callers") for r in measured])
    figures = {
        "stampede_rounds": len(measured),
        "picture_round_apart": len(measured) < len(rounds),
        "browse_p99_ms_idle": _r(idle),
        "browse_p99_ms_stampede": _r(stampede),
        "browse_p99_ms_idle_at_edge": _median([row["browse_p99_ms_idle_at_edge"] for row in reps]),
        "browse_p99_ms_stampede_at_edge": _median([row["browse_p99_ms_stampede_at_edge"] for row in reps]),
        "drain_rate": drain,
        "drain_rate_vs_capacity": round(drain / legacy_rate, 2) if drain is not None and legacy_rate else None,
        "drain_rate_during_stampede": during,
        "drain_rate_after_stampede": after,
        "drain_during_stampede_vs_capacity": round(during / legacy_rate, 2) if during and legacy_rate else None,
        "drain_after_stampede_vs_capacity": round(after / legacy_rate, 2) if after and legacy_rate else None,
        "legacy_rate_all_callers": busy,
        "legacy_busy_vs_capacity": _busy(busy, legacy_rate),
        "consumer_lag_p99_seconds": _median([row["consumer_lag_p99_seconds"] for row in reps]),
        "views_check": all((r.books.get("views_check") or {}).get("in_step") is True for r in rounds),
        **{key: sum(row[key] or 0 for row in rows) for key in ROUND_BOOKS},
    }
    figures["ratios_rounds"] = {
        "browse_p99_ms_stampede / browse_p99_ms_idle (the medians of the rounds)": [
            round(stampede / idle, 2) if idle else None,
            figures["browse_p99_ms_stampede"],
            figures["browse_p99_ms_idle"],
        ],
        "drain_rate / legacy_rate_at_capacity (the median of the rounds' drains)": [
            figures["drain_rate_vs_capacity"],
            drain,
            _r(legacy_rate, 2),
        ],
        "drain_rate_during_stampede / legacy_rate_at_capacity (while the load lasted)": [
            figures["drain_during_stampede_vs_capacity"],
            during,
            _r(legacy_rate, 2),
        ],
        "drain_rate_after_stampede / legacy_rate_at_capacity (after it ended)": [
            figures["drain_after_stampede_vs_capacity"],
            after,
            _r(legacy_rate, 2),
        ],
        "legacy_rate_all_callers / legacy_rate_at_capacity (every caller's orders over the drain's window)": [
            figures["legacy_busy_vs_capacity"],
            busy,
            _r(legacy_rate, 2),
        ],
    }
    figures["spread_rounds"] = {
        "stampede_rounds": rows,
        **{
            key: _spread(reps, key)
            for key in (
                "browse_p99_ms_idle",
                "browse_p99_ms_stampede",
                "browse_ratio",
                "drain_rate_vs_capacity",
                "legacy_busy_vs_capacity",
                "consumer_lag_p99_seconds",
            )
        },
    }
    return figures


def rounds_apply(figures: dict, rounds: list[StampedeRound], legacy_rate: float | None) -> dict:
    """`figures` (made of the median round by `bench.report.figures`) with the rounds' medians,
    books and spreads laid over them."""
    made = rounds_figures(rounds, legacy_rate)
    ratios, spread = made.pop("ratios_rounds"), made.pop("spread_rounds")
    out = {**figures, **made}
    kept = {k: v for k, v in figures.get("ratios", {}).items() if not k.startswith(("browse_p99", "drain_rate"))}
    out["ratios"] = {**kept, **ratios}
    out["spread"] = {**figures.get("spread", {}), **spread}
    # The books the whole run keeps (the legacy API's authorisations) stay as the run read them.
    out["books"] = {**figures.get("books", {}), **{key: made[key] for key in ROUND_BOOKS}}
    return out
