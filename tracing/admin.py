"""The admin's trace view (a waterfall of one trace, found by order number, trace id or URL
path) and service map (calls, errors and p99 per hop). Both need the view permission on
spans; nobody adds, changes or deletes a span by hand."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from config.admin_base import ReadOnlyAdmin, short_datetime
from tracing import selectors, summaries
from tracing.ids import otel_from_any
from tracing.models import Span


def trace_url(trace_id: str) -> str:
    return f"{reverse('admin:tracing_span_trace')}?id={trace_id}"


def trace_rows(traces: list[summaries.TraceSummary]) -> list[dict]:
    """The finder's lists: each trace with its link and its start in the admin's short form."""
    return [{"trace": s, "url": trace_url(s.trace_id), "started": short_datetime(s.start)} for s in traces]


MAP_WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}


@admin.register(Span)
class SpanAdmin(ReadOnlyAdmin):
    def get_urls(self):
        return [
            path("map/", self.permission_view(self.map_view, "view"), name="tracing_span_map"),
            path("trace/", self.permission_view(self.trace_view, "view"), name="tracing_span_trace"),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def changelist_view(self, request, extra_context=None):
        """The trace finder: one query box (order number, trace id, or a URL path)."""
        if request.method != "GET" or not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)  # Django's own refusals
        query = request.GET.get("q", "").strip()
        found = selectors.trace_ids_find(query) if query else []
        if query and len(found) == 1 and (otel_from_any(query) or not query.startswith("/")):
            return HttpResponseRedirect(trace_url(found[0]))
        context = self._context(
            request,
            title="Traces",
            query=query,
            found=trace_rows(summaries.traces_summary(found)),
            recent=[] if query else trace_rows(summaries.traces_recent()),
        )
        return TemplateResponse(request, "admin/tracing/search.html", context)

    def trace_view(self, request):
        """One trace's waterfall (`?id=` a trace id in either spelling); without one, the finder."""
        trace_id = request.GET.get("id", "")
        if not trace_id:
            return self.changelist_view(request)
        trace = selectors.trace_get(otel_from_any(trace_id) or "")
        if trace is None:
            raise Http404("No stored trace has this id.")
        context = self._context(request, title=f"Trace {trace.xray_id}", trace=trace)
        return TemplateResponse(request, "admin/tracing/trace.html", context)

    def map_view(self, request):
        window = request.GET.get("window", "1h")
        window = window if window in MAP_WINDOWS else "1h"
        edges = selectors.service_map(since=timezone.now() - MAP_WINDOWS[window])
        context = self._context(
            request, title="Service map", edges=edges, window=window, windows=list(MAP_WINDOWS), layout=_layout(edges)
        )
        return TemplateResponse(request, "admin/tracing/map.html", context)


STORES = ("postgresql", "redis", "sqlite")
FLOW = {"edge": 0, "monolith": 1, "shop": 1, "hotpath": 1, "queue": 2, "worker": 3, "legacy-api": 4}
BOX_W, BOX_H, GAP_X, STORE_Y = 110, 44, 150, 150


def _layout(edges) -> dict:
    """The services left to right in the order a request meets them (edge, web, queue,
    worker, legacy API), the data stores in a row below; each hop with its end points."""
    names = {e.source for e in edges} | {e.target for e in edges}
    flow = sorted((n for n in names if n not in STORES), key=lambda n: (FLOW.get(n, 1), n))
    stores = [n for n in STORES if n in names]
    nodes = {name: {"name": name, "x": 10 + i * GAP_X, "y": 10} for i, name in enumerate(flow)}
    span = max(len(flow) - 1, 1) * GAP_X
    for i, name in enumerate(stores):
        x = 10 + (i + 1) * span / (len(stores) + 1) if len(stores) > 1 else 10 + span / 2
        nodes[name] = {"name": name, "x": round(x), "y": STORE_Y}
    lines = []
    for edge in edges:
        a, b = nodes[edge.source], nodes[edge.target]
        if edge.target in STORES:  # from the service's bottom to the store's top
            x1, y1, x2, y2 = a["x"] + BOX_W / 2, a["y"] + BOX_H, b["x"] + BOX_W / 2, b["y"]
        else:  # from the right side of one box to the left side of the next
            x1, y1, x2, y2 = a["x"] + BOX_W, a["y"] + BOX_H / 2, b["x"], b["y"] + BOX_H / 2
        lines.append({"edge": edge, "x1": x1, "y1": y1, "x2": x2, "y2": y2})
    width = 20 + max(len(flow), 1) * GAP_X
    height = (STORE_Y + BOX_H + 10) if stores else (BOX_H + 20)
    return {"nodes": list(nodes.values()), "lines": lines, "width": width, "height": height}
