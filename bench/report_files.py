"""The stampede benchmark's files: its Markdown report, its PNG plots and figures.json,
written from the figures `bench.report` makes."""

from __future__ import annotations

import json
from pathlib import Path

from bench.loadgen import RunResult
from bench.report import PUBLIC_KEYS, bars, public
from bench.rounds import ROUND_BOOKS


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
        f"Each speed figure is the median of {f['settings']['reps']} repetitions in this run, the browsing",
        f"p99s and the drain that of its {f.get('stampede_rounds', 1)} rounds of the stampede, each with a",
        "sale of its own (spreads in `figures.json` under `spread`, every round's own figures under",
        "`spread.stampede_rounds`); each ratio is shown beside the two figures it is made of.",
        *(
            [
                "The merchant's dashboard was pictured in a round of its own after those, with Chromium",
                "on the shop's cores: that round is listed below and its books counted, but it is not",
                "one of the rounds the medians are taken over.",
            ]
            if f.get("picture_round_apart")
            else []
        ),
        "",
        "| ratio | value | numerator | denominator |",
        "|---|---|---|---|",
        *[f"| {name} | {v[0]} | {v[1]} | {v[2]} |" for name, v in f["ratios"].items()],
        "",
        *_rounds_markdown(f.get("spread", {}).get("stampede_rounds")),
        *_designs_markdown(f.get("designs")),
        "## Bars",
        "",
        *[f"- {'PASS' if ok else 'MISS'}: {name}" for name, ok in bars(f)],
        "",
        f"Generator CPU: {sum(p['generator_cpu_seconds'] or 0 for p in f['phases'].values()):.1f} s over "
        f"{sum(p['wall_seconds'] or 0 for p in f['phases'].values()):.1f} s of load (it shares the 2 cores).",
        "",
        *_connections_markdown(f.get("hotpath_connections"), f["settings"].get("gunicorn_threads")),
        "![the merchant's dashboard during the stampede](dashboard.png)",
        "![latency](latency.png)",
        "![queue depth](queue_depth.png)",
        "![legacy in flight](legacy_inflight.png)",
        "",
    ]
    return "\n".join(lines)


def _connections_markdown(held: dict | None, threads: int | None) -> list[str]:
    if not held:
        return []
    after = ", ".join(f"{when.replace('_', ' ')}: {counts}" for when, counts in held.items())
    return [f"The hot path's connections to PostgreSQL, per process ({threads} threads each), {after}.", ""]


def _rounds_markdown(rows: list[dict] | None) -> list[str]:
    """Each round of the stampede on a line: what the medians above were taken over."""
    if not rows:
        return []
    lines = [
        "## The stampede's rounds",
        "",
        "| round | browse p99 ms idle / stampede (ratio) | drain / capacity | every caller's orders / capacity "
        "| consumer lag p99 s | books |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in enumerate(rows, 1):
        books = sum(row.get(key) or 0 for key in ROUND_BOOKS)
        name = f"{n} (the dashboard pictured)" if row.get("picture") else str(n)
        lines.append(
            f"| {name} | {row['browse_p99_ms_idle']} / {row['browse_p99_ms_stampede']} ({row['browse_ratio']}) | "
            f"{row['drain_rate_vs_capacity']} | {row.get('legacy_busy_vs_capacity')} | "
            f"{row['consumer_lag_p99_seconds']} | {books} |"
        )
    return [*lines, ""]


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
