"""`python manage.py traces show TRACE_ID_OR_ORDER_NUMBER [--json]`: a trace's waterfall, as
the admin shows it; `traces prune`: the retention sweep now."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from tracing import selectors, services

BAR = 40


class Command(BaseCommand):
    help = "Show a trace (by trace id, X-Ray id or order number), or prune old spans."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        show = sub.add_parser("show", help="print one trace's waterfall")
        show.add_argument("query", help="a trace id (32 hex or 1-xxxxxxxx-...), an order number, or a URL path")
        show.add_argument("--json", action="store_true", help="print the spans as JSON")
        sub.add_parser("prune", help="delete spans past TRACING_RETENTION_HOURS")

    def handle(self, *args, **options):
        if options["action"] == "prune":
            self.stdout.write(f"{services.spans_prune()} span(s) pruned")
            return
        query = options["query"]
        trace_ids = selectors.trace_ids_find(query)
        traces = [t for t in (selectors.trace_get(trace_id) for trace_id in trace_ids[:1]) if t is not None]
        if not traces:
            raise CommandError(f"no stored trace for {query!r} (not sampled, pruned, or unknown)")
        trace = traces[0]
        if options["json"]:
            self.stdout.write(json.dumps(trace.as_dict(), indent=2, default=str))
            return
        self.stdout.write(f"trace {trace.xray_id}  ({trace.trace_id})  {trace.duration_ms:.1f} ms")
        self.stdout.write(f"services: {', '.join(trace.services)}")
        width = max(len(f"{'  ' * r.depth}{r.span.service}: {r.span.name}") for r in trace.rows)
        for row in trace.rows:
            label = f"{'  ' * row.depth}{row.span.service}: {row.span.name}"
            start = int(row.left_pct * BAR / 100)
            length = max(1, round(row.width_pct * BAR / 100))
            bar = " " * start + "█" * min(length, BAR - start if start < BAR else 1)
            flag = "  ERROR" if row.span.error else ""
            line = f"{label:<{width}}  |{bar:<{BAR}}|  +{row.offset_ms:8.1f} ms {row.duration_ms:8.1f} ms{flag}"
            self.stdout.write(line)
