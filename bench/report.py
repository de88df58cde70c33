"""The stampede benchmark's figures: what each run measured, its ratios and spreads, and its bars."""

from __future__ import annotations

import math

from bench.loadgen import RunResult

PUBLIC_KEYS = (
    "allocation",
    "accepted",
    "sold_out",
    "oversold",
    "lost",
    "duplicates",
    "authorisations",
    "authorisations_unmatched",
    "hold_drift",
    "log",
    "log_mismatched",
    "consumer_lag_p99_seconds",
    "legacy_capacity",
    "legacy_max_inflight",
    "db_accept_tps",
    "accept_rps",
    "accept_p50_ms",
    "accept_p99_ms",
    "accept_p99_ms_empty",
    "accept_p99_ms_backlog",
    "ceiling_rps",
    "ceiling_p99_ms",
    "ceiling_get_rps",
    "soldout_rps",
    "event_cost_ms",
    "edge_overhead_ratio",
    "legacy_path_rps",
    "legacy_path_error_rate",
    "legacy_path_p99_ms",
    "browse_p99_ms_idle",
    "browse_p99_ms_stampede",
    "drain_seconds",
    "drain_rate_vs_capacity",
)


def _r(value: float, digits: int = 1) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


def _phase(result: RunResult) -> dict:
    return {
        "requests": len(result.samples),
        "offered_rps": result.rate,
        "achieved_rps": _r(result.achieved_rps()),
        "statuses": {str(k): v for k, v in sorted(result.statuses().items())},
        "p50_ms": _r(result.percentile(50)),
        "p99_ms": _r(result.percentile(99)),
        "p999_ms": _r(result.percentile(99.9)),
        "error_rate": _r(result.error_rate(), 4),
        "generator_cpu_seconds": _r(result.generator_cpu_seconds, 2),
        "wall_seconds": _r(result.wall_seconds, 2),
    }


def _ratio(numerator, denominator, digits: int = 2):
    return round(numerator / denominator, digits) if numerator is not None and denominator else None


def drain_phase_figures(books: dict, legacy_rate: float | None) -> dict:
    """The drain's rate while the stampede's load lasted and after it ended, each against the
    legacy API's calibrated capacity, and each part's share of a core after it: where the
    drain falls short of the capacity, and what held the cores meanwhile."""
    during, after = books.get("drain_rate_during_stampede"), books.get("drain_rate_after_stampede")
    return {
        "drain_rate_during_stampede": during,
        "drain_rate_after_stampede": after,
        "drain_during_stampede_vs_capacity": _ratio(during, legacy_rate),
        "drain_after_stampede_vs_capacity": _ratio(after, legacy_rate),
        "cores_busy_after_stampede": books.get("cores_busy_after_stampede"),
    }


def figures(
    *,
    profile,
    stack,
    idle,
    on,
    off,
    books,
    ceiling,
    accept,
    legacy_rate,
    soldout,
    limit,
    empty,
    backlog,
    edge=None,
    tracing=None,
    uptake=None,
    ceiling_get=None,
    idle_waiting=None,
    designs=None,
) -> dict:
    """`ceiling`, `accept` and `soldout` are wrk medians (bench.speed.wrk_best), `ceiling` the
    trivial view answering the order script's POSTs and `ceiling_get` the same view's bodiless
    GETs, `limit` the database's own (bench.speed.db_accept_limit), `empty` and `backlog`
    acceptance p99s."""
    ceiling_get = ceiling_get or {}
    buyers = on["results"]["buyers"]
    statuses = buyers.statuses()
    off_buyers = off["results"]["buyers"]
    edge = edge or {}
    drain = drain_phase_figures(books, legacy_rate)
    return {
        "allocation": profile.allocation,
        "accepted": books["accepted"],
        "sold_out": statuses.get(409, 0),
        "oversold": books["oversold"],
        "lost": books["lost"],
        "duplicates": books["duplicates"],
        # The legacy API's own count of approved authorisations over the whole run, against the
        # orders it placed (worst of the two readings: after the sale's drain and at the end).
        "authorisations": books["at_end"]["authorisations"],
        "authorisations_unmatched": max(
            (books["authorisations_unmatched"], books["at_end"]["authorisations_unmatched"]), key=abs
        ),
        # The sale's hold in the stock of record against allocated - sold, after the drain.
        "hold_drift": books["hold_drift"],
        # The unified log against the books: one ACCEPTED and one terminal event per 202.
        "log": books["log"],
        "log_mismatched": books["log_mismatched"],
        # The slowest consumer's p99 lag during the stampede (None: no consumer registered).
        "consumer_lag_p99_seconds": max(
            (lag["p99_seconds"] for lag in books["consumer_lag"].values() if isinstance(lag, dict)), default=None
        ),
        "legacy_capacity": stack.settings.legacy_capacity,
        # What the hot path's workers had in flight at the legacy API (it counts each caller
        # apart); the storefront's own checkouts come on top, shed by the legacy API itself.
        "legacy_max_inflight": on["legacy"]["callers"]["hotpath"]["peak_inflight"],
        "legacy_max_inflight_all_callers": on["legacy"].get("peak_inflight", 0),
        "legacy_max_inflight_route_off": off["legacy"].get("peak_inflight", 0),
        "db_accept_tps": limit["db_accept_tps"],
        "accept_rps": accept["median"],
        "accept_p50_ms": _r(buyers.percentile(50)),
        "accept_p99_ms": _r(buyers.percentile(99)),
        "accept_p999_ms": _r(buyers.percentile(99.9)),
        "accept_p99_ms_empty": empty["median"],
        "accept_p99_ms_backlog": backlog["median"],
        "ceiling_rps": ceiling["median"],
        "ceiling_p99_ms": ceiling["p99_ms"],
        "ceiling_get_rps": ceiling_get.get("median"),
        "soldout_rps": soldout["median"],
        # What writing the ACCEPTED event adds to one acceptance, in the database (pgbench).
        "event_cost_ms": limit["event_cost"]["ms_per_acceptance"],
        # What the edge costs per request: Django's whole request with 25 routes over none,
        # in one process (bench.edge_requests). Through a server (requests a second, and its
        # CPU per request) the same difference is lost in the machine's noise; kept beside it.
        "edge_overhead_ratio": edge.get("edge_overhead_ratio"),
        "edge_rps_ratio": edge.get("edge_rps_ratio"),
        "edge_server_cpu_ratio": edge.get("edge_server_cpu_ratio"),
        "consumers_cpu_seconds": books.get("consumers_cpu_seconds", {}).get("total_seconds"),
        "views_check": (books.get("views_check") or {}).get("in_step"),
        "tracing": tracing or {},
        "accept_rps_tracing_default": (tracing or {}).get("accept_rps_tracing_default"),
        "accept_rps_tracing_off": (tracing or {}).get("accept_rps_tracing_off"),
        "tracing_cost_ratio": (tracing or {}).get("tracing_cost_ratio"),
        "tracing_cpu_cost_ratio": (tracing or {}).get("tracing_cpu_cost_ratio"),
        "permit_uptake_ms": (uptake or {}).get("permit_uptake_ms"),
        "permit_uptake": uptake or {},
        # Each ratio beside the two figures it is made of.
        "ratios": {
            "accept_rps / db_accept_tps": [
                _ratio(accept["median"], limit["db_accept_tps"]),
                accept["median"],
                limit["db_accept_tps"],
            ],
            "accept_rps / ceiling_rps": [
                _ratio(accept["median"], ceiling["median"]),
                accept["median"],
                ceiling["median"],
            ],
            "soldout_rps / ceiling_rps": [
                _ratio(soldout["median"], ceiling["median"]),
                soldout["median"],
                ceiling["median"],
            ],
            "soldout_rps / ceiling_get_rps (the trivial view's bodiless GETs)": [
                _ratio(soldout["median"], ceiling_get.get("median")),
                soldout["median"],
                ceiling_get.get("median"),
            ],
            "browse_p99_ms_stampede / browse_p99_ms_idle": [
                _ratio(on["results"]["browse"].percentile(99), idle.percentile(99)),
                _r(on["results"]["browse"].percentile(99)),
                _r(idle.percentile(99)),
            ],
            "drain_rate / legacy_rate_at_capacity (the median of its calibrations)": [
                _ratio(books["drain_rate"], legacy_rate),
                books["drain_rate"],
                _r(legacy_rate, 2),
            ],
            "drain_rate_during_stampede / legacy_rate_at_capacity (while the load lasted)": [
                drain["drain_during_stampede_vs_capacity"],
                drain["drain_rate_during_stampede"],
                _r(legacy_rate, 2),
            ],
            "drain_rate_after_stampede / legacy_rate_at_capacity (after it ended)": [
                drain["drain_after_stampede_vs_capacity"],
                drain["drain_rate_after_stampede"],
                _r(legacy_rate, 2),
            ],
            "accept_p99_ms_backlog / accept_p99_ms_empty": [
                _ratio(backlog["median"], empty["median"]),
                backlog["median"],
                empty["median"],
            ],
            "edge: a request's CPU µs in one process, 25 routes / none (the median of the pairs' ratios)": [
                edge.get("edge_overhead_ratio"),
                ((edge.get("edge_requests") or {}).get("us_per_request_routes") or {}).get("median"),
                ((edge.get("edge_requests") or {}).get("us_per_request_no_routes") or {}).get("median"),
            ],
            "edge: the server's CPU ms per request, 25 routes / none (the median of the pairs' ratios)": [
                edge.get("edge_server_cpu_ratio"),
                (edge.get("edge_with_routes") or {}).get("cpu_ms_per_request"),
                (edge.get("edge_no_routes") or {}).get("cpu_ms_per_request"),
            ],
            "accept_rps, tracing off / at its default sampling": [
                _ratio(
                    (tracing or {}).get("accept_rps_tracing_off"), (tracing or {}).get("accept_rps_tracing_default"), 3
                ),
                (tracing or {}).get("accept_rps_tracing_off"),
                (tracing or {}).get("accept_rps_tracing_default"),
            ],
            "tracing: the hot path's CPU ms an acceptance, off / default, sent at once (median of the ratios)": [
                round(1 - tracing["tracing_cpu_cost_ratio"], 3)
                if (tracing or {}).get("tracing_cpu_cost_ratio") is not None
                else None,
                ((tracing or {}).get("server_cpu_ms_per_acceptance") or {}).get("off"),
                ((tracing or {}).get("server_cpu_ms_per_acceptance") or {}).get("default"),
            ],
        },
        "spread": {
            "db_accept_tps": limit["db_accept"],
            "accept_rps": {k: accept[k] for k in ("min", "max", "values", "connections", "non_2xx")},
            "ceiling_rps": {k: ceiling[k] for k in ("min", "max", "values", "connections")},
            "ceiling_get_rps": {k: ceiling_get.get(k) for k in ("min", "max", "values", "connections")},
            "soldout_rps": {k: soldout[k] for k in ("min", "max", "values", "connections", "non_2xx")},
            "accept_p99_ms_empty": empty,
            "accept_p99_ms_backlog": {"orders_queued": profile.backlog_orders, **backlog},
            "edge": edge,
        },
        "event_cost": limit["event_cost"],
        # The other ways of holding the units, at the database alone (bench.designs), each
        # beside the trivial view: how far the database would let acceptance go toward the aim.
        "designs": _designs_beside_ceiling(designs, ceiling["median"]),
        "legacy_path_rps": _r(sum(1 for s in off_buyers.samples if s.status in (200, 201)) / off_buyers.wall_seconds),
        "legacy_path_error_rate": _r(off_buyers.error_rate(), 4),
        "legacy_path_p99_ms": _r(off_buyers.percentile(99)),
        "browse_p99_ms_idle": _r(idle.percentile(99)),
        "browse_p99_ms_stampede": _r(on["results"]["browse"].percentile(99)),
        "browse_p99_ms_route_off": _r(off["results"]["browse"].percentile(99)),
        "drain_seconds": books["drain_seconds"],
        "drain_rate_vs_capacity": _r(books["drain_rate"] / legacy_rate, 2) if legacy_rate else None,
        **drain,
        "books": books,
        "legacy_rate_at_capacity": _r(legacy_rate, 2),
        "ceiling_steps": ceiling["sweep"],
        "accept_wrk": accept["sweep"],
        "soldout_wrk": soldout["sweep"],
        "phases": {
            "browse_idle": _phase(idle),
            **{f"route_on_{k}": _phase(v) for k, v in on["results"].items()},
            **{f"route_off_{k}": _phase(v) for k, v in off["results"].items()},
        },
        "legacy_stats": {"route_on": on["legacy"], "route_off": off["legacy"]},
        "cores_busy": {"route_on": on["cores"], "route_off": off["cores"]},
        # Threads ready to run but kept waiting for a core, on average (the scheduler's count).
        "cores_waiting": {"idle": idle_waiting or {}, "route_on": on["waiting"], "route_off": off["waiting"]},
        # The monolith's wait for a core per request it served: the browsing pages' share of
        # the stampede's shift, if they wait for a core rather than for what they call.
        "monolith_wait_ms_per_request": {
            "idle": _per_request_ms((idle_waiting or {}).get("monolith"), idle.wall_seconds, [idle]),
            "route_on": _per_request_ms(
                on["waiting"].get("monolith"),
                on["results"]["browse"].wall_seconds,
                [on["results"]["browse"], on["results"]["checkout"]],
            ),
        },
        "_timelines": {"route on": on, "route off": off},
    }


def _designs_beside_ceiling(designs: dict | None, ceiling_rps: float) -> dict | None:
    if not designs:
        return None
    rows = {
        name: {**row, "vs_ceiling_rps": _ratio(row["orders_per_second"], ceiling_rps)}
        for name, row in designs["designs"].items()
    }
    return {**designs, "designs": rows, "ceiling_rps": ceiling_rps}


def _per_request_ms(threads_waiting: float | None, seconds: float, runs: list) -> float | None:
    """Milliseconds waited for a core per request served, from the average number of threads
    waiting over `seconds` and the requests of `runs` (RunResults) in that time."""
    requests = sum(len(run.samples) for run in runs)
    if threads_waiting is None or not requests:
        return None
    return _r(threads_waiting * seconds * 1000 / requests, 2)


def public(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if not k.startswith("_")}


# The books: each is 0 when they hold.
BOOKS = ("oversold", "lost", "duplicates", "authorisations_unmatched", "hold_drift", "log_mismatched")


def books_ok(f: dict) -> bool:
    """No oversell, no lost or duplicated order, one authorisation per order placed, and the
    hold agreeing with the sale."""
    return all(f.get(key, 0) == 0 for key in BOOKS)


def bars(f: dict) -> list[tuple[str, bool]]:
    return [
        ("oversold, lost, duplicates, authorisations_unmatched, hold_drift and log_mismatched are 0", books_ok(f)),
        ("legacy_max_inflight <= legacy_capacity", f["legacy_max_inflight"] <= f["legacy_capacity"]),
        ("accept_rps >= 0.8 x db_accept_tps", (f["accept_rps"] or 0) >= 0.8 * (f["db_accept_tps"] or 0)),
        ("soldout_rps >= 0.8 x ceiling_rps", (f["soldout_rps"] or 0) >= 0.8 * (f["ceiling_rps"] or 0)),
        (
            "accept_p99_ms_backlog <= 1.2 x accept_p99_ms_empty",
            (f["accept_p99_ms_backlog"] or 0) <= 1.2 * (f["accept_p99_ms_empty"] or 0),
        ),
        ("edge_overhead_ratio <= 1.05", f["edge_overhead_ratio"] is not None and f["edge_overhead_ratio"] <= 1.05),
        (
            "tracing at its default sampling costs accept_rps <= 5 %",
            (f["tracing"].get("tracing_cost_ratio") is not None and f["tracing"]["tracing_cost_ratio"] <= 0.05),
        ),
        ("events rebuild --check: every read model equals its rebuild", f["views_check"] is True),
        ("consumer lag p99 < 2 s", f["consumer_lag_p99_seconds"] is not None and f["consumer_lag_p99_seconds"] < 2),
        ("(aim) accept_rps >= 0.6 x ceiling_rps", (f["accept_rps"] or 0) >= 0.6 * (f["ceiling_rps"] or 0)),
        (
            "browse_p99_ms_stampede <= 2 x browse_p99_ms_idle",
            (f["browse_p99_ms_stampede"] or 0) <= 2 * (f["browse_p99_ms_idle"] or 0),
        ),
        ("drain_rate_vs_capacity >= 0.8", (f["drain_rate_vs_capacity"] or 0) >= 0.8),
    ]


def summary(f: dict) -> str:
    lines = [f"{k}: {f[k]}" for k in PUBLIC_KEYS]
    lines += [f"{'PASS' if ok else 'MISS'}  {name}" for name, ok in bars(f)]
    return "\n".join(lines)
