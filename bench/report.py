"""The stampede benchmark's figures, its Markdown report and its PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

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
                _ratio(books.get("drain_rate_during_stampede"), legacy_rate),
                books.get("drain_rate_during_stampede"),
                _r(legacy_rate, 2),
            ],
            "drain_rate_after_stampede / legacy_rate_at_capacity (after it ended)": [
                _ratio(books.get("drain_rate_after_stampede"), legacy_rate),
                books.get("drain_rate_after_stampede"),
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
        **drain_phase_figures(books, legacy_rate),
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


def _series(result: RunResult, q: float) -> tuple[list[float], list[float]]:
    buckets: dict[int, list[float]] = {}
    for sample in result.samples:
        buckets.setdefault(int(sample.intended), []).append(sample.latency_ms)
    xs, ys = [], []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        xs.append(second)
        ys.append(values[min(len(values) - 1, int(q / 100 * len(values)))])
    return xs, ys


def plots(f: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timelines = f["_timelines"]
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, (label, data) in zip(axes, timelines.items(), strict=True):
        buyers = data["results"]["buyers"]
        for q, style in ((50, "-"), (99, "--"), (99.9, ":")):
            xs, ys = _series(buyers, q)
            ax.plot(xs, ys, style, label=f"buyers p{q:g}")
        xs, ys = _series(data["results"]["browse"], 99)
        ax.plot(xs, ys, "-", label="browse p99", alpha=0.7)
        ax.set_title(f"Latency, {label}")
        ax.set_xlabel("seconds into the stampede")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("ms (from intended send time)")
    axes[0].legend()
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    for index, (name, ylabel) in enumerate(
        (("queue_depth", "messages in the queue"), ("legacy_inflight", "orders in flight at the legacy API")), start=1
    ):
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for label, data in timelines.items():
            rows = data["timeline"]
            ax.plot([r[0] for r in rows], [r[index] for r in rows], label=label)
        if name == "legacy_inflight":
            ax.axhline(f["legacy_capacity"], color="red", linestyle="--", label="capacity")
        ax.set_xlabel("seconds")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def markdown(f: dict) -> str:
    on = f["phases"]["route_on_buyers"]
    off = f["phases"]["route_off_buyers"]
    lines = [
        "# Black Friday on one machine",
        "",
        f"{f['machine']['cores']} cores, Python {f['machine']['python']}, Django {f['machine']['django']}, "
        f"Celery {f['machine']['celery']}, {f['machine']['nginx']}, {f['machine']['postgresql']}."
        f" {'Quick run.' if f['quick'] else 'Full run.'} {f.get('seconds', '?')} s in all.",
        "",
        "## The stampede, with the strangler route and without",
        "",
        "| | route on (hot path) | route off (monolith) |",
        "|---|---|---|",
        f"| buyers offered | {on['offered_rps']}/s for {f['settings']['stampede_seconds']} s | "
        f"{off['offered_rps']}/s for {f['settings']['stampede_seconds']} s |",
        f"| answers | {on['statuses']} | {off['statuses']} |",
        f"| p50 / p99 / p99.9 ms | {on['p50_ms']} / {on['p99_ms']} / {on['p999_ms']} | "
        f"{off['p50_ms']} / {off['p99_ms']} / {off['p999_ms']} |",
        f"| error rate (5xx or failed) | {on['error_rate']} | {off['error_rate']} |",
        f"| browse p99 ms (idle {f['browse_p99_ms_idle']}) | {f['browse_p99_ms_stampede']} | "
        f"{f['browse_p99_ms_route_off']} |",
        f"| browse p99 ms at nginx (idle {f.get('browse_p99_ms_idle_at_edge')}) | "
        f"{f.get('browse_p99_ms_stampede_at_edge')} | |",
        f"| ordinary checkouts | {f['phases']['route_on_checkout']['statuses']} | "
        f"{f['phases']['route_off_checkout']['statuses']} |",
        f"| legacy API peak in flight, all callers (capacity {f['legacy_capacity']}) | "
        f"{f['legacy_max_inflight_all_callers']} (workers {f['legacy_max_inflight']}) | "
        f"{f['legacy_max_inflight_route_off']} |",
        "",
        "## Where the cores went during the stampede",
        "",
        "Cores kept busy by each part of the stack (1.0 is one core the whole time; the load",
        "generators run in processes of their own, outside these). `(idle)` is what nothing used;",
        "`(stolen)` is what the hypervisor gave to other guests, which slows every part alike.",
        "",
        "| | " + " | ".join(sorted(f["cores_busy"]["route_on"])) + " |",
        "|---|" + "---|" * len(f["cores_busy"]["route_on"]),
        *[
            f"| {label.replace('_', ' ')} | "
            + " | ".join(str(f["cores_busy"][label].get(name, 0.0)) for name in sorted(f["cores_busy"]["route_on"]))
            + " |"
            for label in ("route_on", "route_off")
        ],
        *(
            [
                "| route on, its drain after the load ended | "
                + " | ".join(
                    str(f["cores_busy_after_stampede"].get(name, 0.0)) for name in sorted(f["cores_busy"]["route_on"])
                )
                + " |"
            ]
            if f.get("cores_busy_after_stampede")
            else []
        ),
        "",
        "Threads of each part ready to run but kept waiting for a core, on average (the",
        "scheduler's own count). The monolith's wait per request it served (browsing and checkout):",
        f"{f['monolith_wait_ms_per_request']['idle']} ms idle, "
        f"{f['monolith_wait_ms_per_request']['route_on']} ms during the stampede.",
        "",
        "| | " + " | ".join(sorted(f["cores_waiting"]["route_on"])) + " |",
        "|---|" + "---|" * len(f["cores_waiting"]["route_on"]),
        *[
            f"| {label.replace('_', ' ')} | "
            + " | ".join(
                str(f["cores_waiting"][label].get(name, 0.0)) for name in sorted(f["cores_waiting"]["route_on"])
            )
            + " |"
            for label in ("idle", "route_on", "route_off")
        ],
        "",
        "## Figures",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| `{k}` | {f[k]} |" for k in PUBLIC_KEYS],
        "",
        "## Ratios",
        "",
        f"Each speed figure is the median of {f['settings']['reps']} repetitions in this run (spreads in",
        "`figures.json` under `spread`); each ratio is shown beside the two figures it is made of.",
        "",
        "| ratio | value | numerator | denominator |",
        "|---|---|---|---|",
        *[f"| {name} | {v[0]} | {v[1]} | {v[2]} |" for name, v in f["ratios"].items()],
        "",
        *_designs_markdown(f.get("designs")),
        "## Bars",
        "",
        *[f"- {'PASS' if ok else 'MISS'}: {name}" for name, ok in bars(f)],
        "",
        f"Generator CPU: {sum(p['generator_cpu_seconds'] or 0 for p in f['phases'].values()):.1f} s over "
        f"{sum(p['wall_seconds'] or 0 for p in f['phases'].values()):.1f} s of load (it shares the 2 cores).",
        "",
        "![the merchant's dashboard during the stampede](dashboard.png)",
        "![latency](latency.png)",
        "![queue depth](queue_depth.png)",
        "![legacy in flight](legacy_inflight.png)",
        "",
    ]
    return "\n".join(lines)


def _designs_markdown(designs: dict | None) -> list[str]:
    if not designs:
        return []
    return [
        "## Ways of holding the units, at the database alone",
        "",
        f"pgbench at {designs['clients']} connections, one-unit orders, medians of {designs['times']} runs",
        f"taken in turn (`python -m bench.designs`); `split_rows` over {designs['shards']} rows, `group_commit`",
        f"{designs['group']} orders a commit. The aim is 0.6 x `ceiling_rps` ({designs['ceiling_rps']}).",
        "",
        "| design | orders a second | runs | against one row | against `ceiling_rps` |",
        "|---|---|---|---|---|",
        *[
            f"| `{name}` | {row['orders_per_second']} | {row['values']} | {row['vs_one_row']} | "
            f"{row['vs_ceiling_rps']} |"
            for name, row in designs["designs"].items()
        ],
        "",
    ]


def write(f: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plots(f, out)
    (out / "report.md").write_text(markdown(f))
    (out / "figures.json").write_text(json.dumps(public(f), indent=2, sort_keys=True))
