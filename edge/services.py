"""Writes of the routing state: every change validated, audited and previewable.

The admin and the `edge_route` command both go through these functions, so a route is
checked the same way wherever it is changed, and every change can be rolled back in one
step from its audit entry. Each audited change also goes to the unified log (ROUTE events
from shop.edge), in the same transaction.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from edge import selectors
from edge.exporters import cloudfront
from edge.models import Origin, Route, RouteAudit
from events.services import event_append

ROUTE_FIELDS = (
    "name",
    "pattern",
    "origin",
    "position",
    "enabled",
    "window_start",
    "window_end",
    "canary_percent",
    "redirect_url",
    "redirect_status",
)


def route_snapshot(route: Route) -> dict:
    """A route as JSON, enough to recreate it."""
    data = {}
    for name in ROUTE_FIELDS:
        value = getattr(route, name)
        if name == "origin":
            value = value.name if value is not None else None
        elif isinstance(value, datetime):
            value = value.isoformat()
        data[name] = value
    return data


def _apply_snapshot(route: Route, data: dict) -> None:
    for name in ROUTE_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "origin":
            value = Origin.objects.get(name=value) if value else None
        elif name in ("window_start", "window_end") and value:
            value = datetime.fromisoformat(value)
        setattr(route, name, value)


# The log's status for each audited action, in the tense of the other sources' events.
EVENT_STATUS = {
    RouteAudit.Action.CREATE: "ADDED",
    RouteAudit.Action.UPDATE: "UPDATED",
    RouteAudit.Action.ENABLE: "ENABLED",
    RouteAudit.Action.DISABLE: "DISABLED",
    RouteAudit.Action.DELETE: "REMOVED",
    RouteAudit.Action.ROLLBACK: "ROLLED_BACK",
}


def _audit(*, actor: str, action: str, route: Route | None, name: str, before, after) -> RouteAudit:
    """The audit entry and its ROUTE event; called inside the change's transaction."""
    audit = RouteAudit.objects.create(
        route=route, route_name=name, actor=actor or "system", action=action, before=before, after=after
    )
    event_append(
        source="shop.edge",
        detail_type="State change Notification",
        type="ROUTE",
        subtype="ROUTE",
        status=EVENT_STATUS[action],
        data={"route": name, "audit": audit.pk, "actor": audit.actor, "before": before, "after": after},
    )
    return audit


def _save(route: Route) -> list[str]:
    route.full_clean()
    route.save()
    return selectors.route_warnings(route)


def route_prepare(*, name: str, pattern: str, origin: str | Origin | None = None, **fields) -> Route:
    """A new route, validated but not saved (what `route_create` would save)."""
    if isinstance(origin, str):
        found = Origin.objects.filter(name=origin).first()
        if found is None:
            names = ", ".join(Origin.objects.values_list("name", flat=True))
            raise ValidationError({"origin": f"No origin named {origin!r}; the origins are: {names}."})
        origin = found
    if fields.get("position") is None:
        fields["position"] = (Route.objects.aggregate(m=Max("position"))["m"] or 0) + 10
    route = Route(name=name, pattern=pattern, origin=origin, **fields)
    route.full_clean()
    return route


def route_create(*, actor: str, name: str, pattern: str, origin: str | Origin | None = None, **fields) -> tuple:
    """Creates a route (disabled unless `enabled=True`); returns it and any warnings."""
    with transaction.atomic():
        route = route_prepare(name=name, pattern=pattern, origin=origin, **fields)
        warnings = _save(route)
        _audit(
            actor=actor,
            action=RouteAudit.Action.CREATE,
            route=route,
            name=name,
            before=None,
            after=route_snapshot(route),
        )
    return route, warnings


def route_save(*, actor: str, route: Route) -> list[str]:
    """Saves a new or edited route instance (the admin's form instance); returns warnings."""
    with transaction.atomic():
        adding = route.pk is None
        before = None if adding else route_snapshot(Route.objects.select_related("origin").get(pk=route.pk))
        warnings = _save(route)
        after = route_snapshot(route)
        if before != after:
            action = RouteAudit.Action.CREATE if adding else RouteAudit.Action.UPDATE
            if before and {k for k in after if after[k] != before.get(k)} == {"enabled"}:
                action = RouteAudit.Action.ENABLE if route.enabled else RouteAudit.Action.DISABLE
            _audit(actor=actor, action=action, route=route, name=route.name, before=before, after=after)
    return warnings


def route_set_enabled(*, actor: str, route: Route, enabled: bool) -> list[str]:
    route = Route.objects.select_related("origin").get(pk=route.pk)
    route.enabled = enabled
    return route_save(actor=actor, route=route)


def route_delete(*, actor: str, route: Route) -> None:
    with transaction.atomic():
        before = route_snapshot(route)
        name = route.name
        route.delete()
        _audit(actor=actor, action=RouteAudit.Action.DELETE, route=None, name=name, before=before, after=None)


def route_restore(*, actor: str, audit: RouteAudit) -> Route | None:
    """Rolls one change back: the fields `audit` changed, as they were before it (the route
    gone if it was created, back if it was deleted). Refused (ValidationError) when any of
    those fields changed again since: rolling back an old change must not undo a later one,
    such as a sale's close switching its route off."""
    with transaction.atomic():
        current = Route.objects.select_related("origin").filter(name=audit.route_name).first()
        before_now = route_snapshot(current) if current else None
        if audit.after is None:  # a deletion: the route comes back, if its name is free
            if current is not None:
                raise ValidationError(f"A route named {audit.route_name} exists again: nothing to restore.")
            changed = list(ROUTE_FIELDS)
        else:
            if current is None:
                raise ValidationError(f"Route {audit.route_name} was deleted since: restore it from its deletion.")
            changed = [k for k in ROUTE_FIELDS if (audit.before or {}).get(k) != audit.after.get(k)]
            moved = [k for k in changed if before_now.get(k) != audit.after.get(k)]
            if moved:
                raise ValidationError(
                    f"Route {audit.route_name} changed again since ({', '.join(moved)}): roll back the later "
                    "change first."
                )
        if audit.before is None:
            current.delete()
            route = None
        else:
            route = current or Route()
            _apply_snapshot(route, {k: audit.before[k] for k in changed if k in audit.before})
            route.full_clean()
            route.save()
        _audit(
            actor=actor,
            action=RouteAudit.Action.ROLLBACK,
            route=route,
            name=audit.route_name,
            before=before_now,
            after=route_snapshot(route) if route else None,
        )
    return route


POLICY_NAMES = {
    cloudfront.CACHING_DISABLED: "CachingDisabled",
    cloudfront.CACHING_OPTIMIZED: "CachingOptimized",
    cloudfront.ALL_VIEWER: "AllViewer",
    cloudfront.ALL_VIEWER_EXCEPT_HOST_HEADER: "AllViewerExceptHostHeader",
}


def _when(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat() if epoch is not None else "…"


def config_text(table: dict) -> str:
    """The routing every router is compiled from, one line per route and per behaviour, so
    a change reads as a short diff."""
    lines = ["Routes, in order (the first that applies wins):"]
    for i, r in enumerate(table["routes"], 1):
        target = f"redirect {r['redirect_status']} {r['redirect_url']}" if r["redirect_url"] else f"-> {r['origin']}"
        extra = ""
        if r["window_start"] is not None or r["window_end"] is not None:
            extra += f"  window {_when(r['window_start'])} .. {_when(r['window_end'])}"
        if r["canary_percent"] is not None:
            extra += f"  canary {r['canary_percent']}%"
        lines.append(f"  {i:>2}. {r['name']}  {r['pattern']}  {target}{extra}")
    lines.append(f"  default -> {table['default_origin']}")
    config = cloudfront.distribution_config(table)
    lines.append("CloudFront behaviours:")
    for b in [*config["CacheBehaviors"].get("Items", []), config["DefaultCacheBehavior"]]:
        events = ",".join(a["EventType"] for a in b["LambdaFunctionAssociations"].get("Items", []))
        policies = "+".join(
            POLICY_NAMES.get(b.get(k), b.get(k)) for k in ("CachePolicyId", "OriginRequestPolicyId") if b.get(k)
        )
        lines.append(
            f"  {b.get('PathPattern', '(default)')}  -> {b['TargetOriginId']}  {policies}  lambda@edge: {events}"
        )
    return "\n".join(lines)


def route_change_preview(
    *, candidate: Route | None = None, removed: Route | None = None, candidates: list[Route] | None = None
) -> str:
    """A unified diff of the compiled configuration if the candidates were saved (or
    `removed` deleted); empty when nothing would change."""
    changed = [*(candidates or []), *([candidate] if candidate is not None else [])]
    replaced = {r.pk for r in changed if r.pk is not None} | ({removed.pk} if removed is not None else set())
    current = list(Route.objects.select_related("origin").all())
    proposed = [r for r in current if r.pk not in replaced] + changed
    before = config_text(selectors.route_table(current)).splitlines()
    after = config_text(selectors.route_table(proposed)).splitlines()
    return "\n".join(difflib.unified_diff(before, after, "current", "proposed", lineterm=""))
