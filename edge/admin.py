"""Merchant admin for the edge: routes (ordered, switchable, previewed, audited, rolled back
in one step), origins, the audit trail, and a "which route serves this URI, and why" tester."""

from __future__ import annotations

import time
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_base import LoadedVersionForm, ReadOnlyAdmin, ShopModelAdmin
from edge import matcher, selectors, services
from edge.models import Origin, Route, RouteAudit

PREVIEW_NOTE = "Preview only: nothing was saved. Review the change below, then Save."


def _actor(request) -> str:
    return f"admin:{request.user.get_username()}"


def _rollback_refusal(request, audit: RouteAudit) -> str | None:
    """Why this merchant may not roll `audit` back, if they may not: rolling back a route's
    creation deletes it, and rolling back its deletion adds it again, which the permission to
    change routes alone does not allow (their own pages ask for the one to delete or add)."""
    if audit.before is None and not request.user.has_perm("edge.delete_route"):
        return "it would delete the route, and you may not delete routes"
    if audit.after is None and not request.user.has_perm("edge.add_route"):
        return "it would add the route again, and you may not add routes"
    return None


@admin.register(Origin)
class OriginAdmin(ShopModelAdmin):
    list_display = ("name", "kind", "protocol", "domain", "port", "path", "is_default")


class RouteAuditInline(admin.TabularInline):
    model = RouteAudit
    fields = ("at", "actor", "action", "before", "after")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-at", "-pk")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TesterForm(forms.Form):
    uri = forms.CharField(
        label="URI",
        initial="/shop/rods/muskie-casting-rod/",
        help_text="Path and query, e.g. /shop/?q=1",
        # Real URIs are long: a merchant must see the whole of what they test.
        widget=forms.TextInput(attrs={"class": "vLargeTextField edge-uri", "size": 80}),
    )
    canary_cookie = forms.CharField(
        label="Canary cookie", required=False, help_text=f"Value of the {matcher.CANARY_COOKIE} cookie."
    )
    tester_header = forms.ChoiceField(
        label="X-Edge-Canary header",
        required=False,
        choices=[("", "—"), ("in", "in"), ("out", "out")],
        help_text="Sent by testers to step into (or out of) a canary.",
    )
    at = forms.DateTimeField(
        label="At", required=False, help_text="When, e.g. 2026-11-27 09:00 (default: now), for sale windows."
    )
    include_disabled = forms.BooleanField(
        label="Include disabled routes", required=False, help_text="Show disabled routes in the explanation."
    )


class RouteForm(LoadedVersionForm):
    """A route's page loaded before the route changed elsewhere (a sale's close switching it
    off, another merchant, the command) saves nothing: it would undo that change."""

    version_fields = services.ROUTE_FIELDS

    class Meta:
        model = Route
        fields = list(services.ROUTE_FIELDS)


@admin.register(Route)
class RouteAdmin(ShopModelAdmin):
    form = RouteForm
    list_display = ("position", "name", "pattern", "target", "enabled", "window", "canary_percent")
    list_display_links = ("name",)
    list_filter = ("enabled", "origin")
    search_fields = ("name", "pattern")
    ordering = ("position", "pk")
    inlines = [RouteAuditInline]
    actions = ["enable_routes", "disable_routes", "roll_back_last_change"]
    change_form_template = "admin/edge/route/change_form.html"
    change_list_template = "admin/edge/route/change_list.html"
    fieldsets = (
        (None, {"fields": ("name", "pattern", "origin", "position", "enabled")}),
        ("Sale window", {"fields": ("window_start", "window_end")}),
        ("Canary", {"fields": ("canary_percent",)}),
        ("Redirect instead of an origin", {"fields": ("redirect_url", "redirect_status")}),
    )

    @admin.display(description="target")
    def target(self, obj: Route) -> str:
        return f"redirect {obj.redirect_status} {obj.redirect_url}" if obj.redirect_url else f"→ {obj.origin}"

    @admin.display(description="sale window")
    def window(self, obj: Route) -> str:
        if not (obj.window_start or obj.window_end):
            return ""
        return f"{obj.window_start or '…'} – {obj.window_end or '…'}"

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)

        class PreviewForm(base):
            edge_preview = None
            edge_warnings: list[str] = []

            def _post_clean(self):
                super()._post_clean()
                if "_preview" in self.data and not self._errors:
                    diff = services.route_change_preview(candidate=self.instance)
                    self.edge_preview = diff or "No change to the compiled configuration."
                    self.edge_warnings = selectors.route_warnings(self.instance)
                    # An error keeps the form on screen with what was typed and stops the save;
                    # render_change_form shows it as the preview it is, not as a mistake.
                    self.add_error(None, PREVIEW_NOTE)

        return PreviewForm

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The preview is only made for a form with no error of its own (see PreviewForm).
        if getattr(context.get("adminform") and context["adminform"].form, "edge_preview", None):
            context["errors"] = []  # no "Please correct the error below." and no "Error:" title
            context["title"] = f"{context.get('title', 'Change route')} (preview)"
            context["edge_preview_note"] = PREVIEW_NOTE
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def save_model(self, request, obj, form, change):
        for warning in services.route_save(actor=_actor(request), route=obj):
            messages.warning(request, warning)

    def delete_model(self, request, obj):
        services.route_delete(actor=_actor(request), route=obj)

    def delete_queryset(self, request, queryset):
        for route in queryset:
            services.route_delete(actor=_actor(request), route=route)

    def _set_enabled(self, request, queryset, enabled: bool):
        routes = list(queryset.select_related("origin"))
        if "apply" not in request.POST:
            # A preview first: the change to the compiled routes, applied only on confirmation.
            for route in routes:
                route.enabled = enabled
            context = {
                **self.admin_site.each_context(request),
                "title": f"{'Enable' if enabled else 'Disable'} {len(routes)} route(s)?",
                "routes": routes,
                "diff": services.route_change_preview(candidates=routes),
                "warnings": [w for route in routes for w in selectors.route_warnings(route)],
                "action": request.POST.get("action"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/edge/route/confirm_action.html", context)
        for route in routes:
            try:
                for warning in services.route_set_enabled(actor=_actor(request), route=route, enabled=enabled):
                    messages.warning(request, warning)
            except ValidationError as exc:
                messages.error(request, f"{route.name}: {' '.join(exc.messages)}")
                continue
            messages.success(request, f"Route {route.name} {'enabled' if enabled else 'disabled'}.")
        return None

    @admin.action(description="Enable the selected routes", permissions=["change"])
    def enable_routes(self, request, queryset):
        return self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected routes", permissions=["change"])
    def disable_routes(self, request, queryset):
        return self._set_enabled(request, queryset, False)

    @admin.action(description="Roll back the last change of the selected routes", permissions=["change"])
    def roll_back_last_change(self, request, queryset):
        for route in queryset:
            audit = RouteAudit.objects.filter(route_name=route.name).exclude(action="rollback").first()
            if audit is None:
                messages.warning(request, f"{route.name}: no change to roll back.")
                continue
            refusal = _rollback_refusal(request, audit)
            if refusal:
                messages.error(request, f"{route.name}: cannot roll back: {refusal}.")
                continue
            try:
                restored = services.route_restore(actor=_actor(request), audit=audit)
            except ValidationError as exc:
                messages.error(request, f"{route.name}: cannot roll back: {' '.join(exc.messages)}")
                continue
            messages.success(request, f"{route.name}: restored as it was before {audit}.")
            for warning in selectors.route_warnings(restored) if restored else ():
                messages.warning(request, warning)

    def get_urls(self):
        tester = self.permission_view(self.tester_view, "view")
        return [path("tester/", tester, name="edge_route_tester"), *super().get_urls()]

    def tester_view(self, request):
        form = TesterForm(request.GET or None)
        decision = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            moment: datetime = data["at"] or timezone.now()
            rows = Route.objects.select_related("origin").order_by("position", "pk")
            if not data["include_disabled"]:
                rows = rows.filter(enabled=True)
            cookies = {matcher.CANARY_COOKIE: data["canary_cookie"]} if data["canary_cookie"] else {}
            headers = {matcher.CANARY_HEADER: data["tester_header"]} if data["tester_header"] else {}
            decision = matcher.decide(
                [r.to_spec() for r in rows],
                data["uri"],
                now=moment.timestamp() if data["at"] else time.time(),
                cookies=cookies,
                headers=headers,
                default_origin=selectors.default_origin_name(),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Which route serves this URI, and why",
            "form": form,
            "decision": decision,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/edge/route/tester.html", context)


@admin.register(RouteAudit)
class RouteAuditAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "route_name", "restore_link")
    list_filter = ("action",)
    search_fields = ("route_name", "actor")
    readonly_fields = ("route", "route_name", "actor", "at", "action", "before", "after")
    actions = ["roll_back"]

    @admin.display(description="route")
    def restore_link(self, obj: RouteAudit):
        if obj.route_id:
            return format_html(
                '<a href="{}">{}</a>', reverse("admin:edge_route_change", args=[obj.route_id]), obj.route_name
            )
        return obj.route_name

    @admin.action(description="Roll back: restore the route as it was before this change", permissions=["change_route"])
    def roll_back(self, request, queryset):
        for audit in queryset.order_by("-at", "-pk"):
            refusal = _rollback_refusal(request, audit)
            if refusal:
                messages.error(request, f"{audit}: cannot restore: {refusal}.")
                continue
            try:
                route = services.route_restore(actor=_actor(request), audit=audit)
            except ValidationError as exc:
                messages.error(request, f"{audit}: cannot restore: {' '.join(exc.messages)}")
                continue
            state = f"restored ({'enabled' if route.enabled else 'disabled'})" if route else "removed (it was created)"
            messages.success(request, f"Route {audit.route_name} {state}.")
            for warning in selectors.route_warnings(route) if route else ():
                messages.warning(request, warning)

    def has_change_route_permission(self, request) -> bool:
        # Rolling back is a change to routes, not to the (read-only) audit trail.
        return request.user.has_perm("edge.change_route")
