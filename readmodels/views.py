"""The live sale dashboard in the admin: the page (useful without JavaScript: it is rendered
with the figures of the moment) and its JSON, for staff with the dashboard's permission. Both
take the document the workers keep while it is fresh (readmodels.dashboard.dashboard_body)."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from config.admin_base import short_datetime
from events.models import DeadLetter as ConsumerDeadLetter
from orders.models import DeadLetter as OrderDeadLetter
from readmodels.dashboard import dashboard_body
from readmodels.models import PurchaseOrder

PERMISSION = "readmodels.view_dashboard"
# Rows of the sales-per-minute table (the chart above it shows the whole half hour).
MINUTES_SHOWN = 5


def _dashboard_permission(*, json_answer: bool):
    """Staff with PERMISSION only: anybody else gets 403 (JSON), or the admin's sign-in page
    when not signed in as staff (the page); staff without it get 403 either way."""

    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            user = request.user
            if not (user.is_active and user.is_staff):
                if json_answer:
                    return JsonResponse({"error": "forbidden", "detail": "Staff only."}, status=403)
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not user.has_perm(PERMISSION):
                if json_answer:
                    return JsonResponse(
                        {"error": "forbidden", "detail": "No permission to view the dashboard."}, status=403
                    )
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return never_cache(checked)

    return decorate


READ_METHODS = ("GET", "HEAD")


def _read_only_json(view):
    """GET and HEAD only, anything else a JSON 405 naming them, before the CSRF check (nothing
    is written, so a POST without a token is as wrong a method as one with it)."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        if request.method not in READ_METHODS:
            response = JsonResponse(
                {"error": "method_not_allowed", "detail": "The dashboard's figures are read with GET."}, status=405
            )
            response["Allow"] = ", ".join(READ_METHODS)
            return response
        return view(request, *args, **kwargs)

    return csrf_exempt(checked)


@require_safe
@_dashboard_permission(json_answer=False)
def dashboard(request):
    data = json.loads(dashboard_body())
    site = admin.site.each_context(request)
    context = {
        **site,
        # A merchant who may see only the dashboard has no models to list: no sidebar saying so.
        "is_nav_sidebar_enabled": site["is_nav_sidebar_enabled"] and bool(site["available_apps"]),
        "title": "During the sale",
        "data": data,
        "generated_at": short_datetime(parse_datetime(data.get("generated_at") or ""), seconds=True),
        # The last MINUTES_SHOWN minutes, the latest first, dated as the admin dates its lists.
        "minutes_shown": MINUTES_SHOWN,
        "links": _links_allowed(request),
        "minutes": [
            {**row, "label": short_datetime(parse_datetime(row["minute"]))}
            for row in reversed(data["sales_per_minute"][-MINUTES_SHOWN:])
        ],
    }
    return TemplateResponse(request, "readmodels/dashboard.html", context)


def _links_allowed(request) -> dict[str, bool]:
    """The lists the page links to that this member of staff may open: a figure whose list would
    answer 403 is shown without its link (the JSON keeps every URL; the page's script asks here)."""
    lists = {"order_dead_letters": OrderDeadLetter, "consumer_dead_letters": ConsumerDeadLetter}
    lists["purchase_orders"] = PurchaseOrder
    return {name: admin.site.get_model_admin(model).has_view_permission(request) for name, model in lists.items()}


@_read_only_json
@_dashboard_permission(json_answer=True)
def dashboard_json(request):
    return HttpResponse(dashboard_body(), content_type="application/json")
