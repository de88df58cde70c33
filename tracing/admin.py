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

from config.admin_base import ReadOnlyAdmin
from tracing import selectors
from tracing.ids import otel_from_any
from tracing.models import Span

MAP_WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24)}


@admin.register(Span)
class SpanAdmin(ReadOnlyAdmin):
    def get_urls(self):
        return [
            path("map/", self.permission_view(self.map_view, "view"), name="tracing_span_map"),
            path("trace/<str:trace_id>/", self.permission_view(self.trace_view, "view"), name="tracing_span_trace"),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def changelist_view(self, request, extra_context=None):
        """The trace finder: one query box (order number, trace id, or a URL path)."""
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)  # Django's own refusal
        query = request.GET.get("q", "").strip()
        found = selectors.trace_ids_find(query) if query else []
        if query and len(found) == 1 and (otel_from_any(query) or not query.startswith("/")):
            return HttpResponseRedirect(reverse("admin:tracing_span_trace", args=[found[0]]))
        context = self._context(
            request,
            title="Traces",
            query=query,
            found=[{"trace_id": t, "xray_id": selectors.xray_from_otel(t)} for t in found],
            recent=[] if query else selectors.traces_recent(),
        )
        return TemplateResponse(request, "admin/tracing/search.html", context)

    def trace_view(self, request, trace_id: str):
        trace = selectors.trace_get(otel_from_any(trace_id) or "")
        if trace is None:
            raise Http404("No stored trace has this id.")
        context = self._context(request, title=f"Trace {trace.xray_id}", subtitle=trace.xray_id, trace=trace)
        return TemplateResponse(request, "admin/tracing/trace.html", context)

    def map_view(self, request):
        window = request.GET.get("window", "1h")
        window = window if window in MAP_WINDOWS else "1h"
        edges = selectors.service_map(since=timezone.now() - MAP_WINDOWS[window])
        context = self._context(
            request, title="Service map", edges=edges, window=window, windows=list(MAP_WINDOWS), layout=_layout(edges)
        )
        return TemplateResponse(request, "admin/tracing/map.html", context)


def _layout(edges) -> dict:
    """Nodes in columns by hop (edge, web, data and queue, worker, legacy API), positioned for
    the SVG drawing; each edge with its end points."""
    column = {"edge": 0, "queue": 2, "worker": 3, "legacy-api": 4, "postgresql": 5, "redis": 5, "sqlite": 5}
    names = sorted({e.source for e in edges} | {e.target for e in edges}, key=lambda n: (column.get(n, 1), n))
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(column.get(name, 1), []).append(name)
    used = sorted(columns)
    width, height = 160 * max(len(used), 1) + 40, 110 * max((len(v) for v in columns.values()), default=1) + 20
    nodes = {}
    for x_index, col in enumerate(used):
        for y_index, name in enumerate(columns[col]):
            nodes[name] = {"name": name, "x": 30 + x_index * 160, "y": 20 + y_index * 110}
    lines = []
    for edge in edges:
        a, b = nodes[edge.source], nodes[edge.target]
        lines.append({"edge": edge, "x1": a["x"] + 110, "y1": a["y"] + 24, "x2": b["x"], "y2": b["y"] + 24})
    return {"nodes": list(nodes.values()), "lines": lines, "width": width, "height": height}
