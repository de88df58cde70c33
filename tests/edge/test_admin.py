"""The merchant admin: validation with clear messages, the preview, actions, rollback in one
step from the audit trail, and the route tester."""

from __future__ import annotations

import html

import pytest

from edge import services
from edge.models import Origin, Route, RouteAudit
from tests.edge.conftest import create_routes, ensure_origins

ADD_URL = "/admin/edge/route/add/"


def form_data(route: Route | None = None, **overrides) -> dict:
    audits = RouteAudit.objects.filter(route=route).count() if route else 0
    data = {
        "name": "muskie",
        "pattern": "/shop/rods/muskie-casting-rod/*",
        "origin": str(Origin.objects.get(name="hotpath").pk),
        "position": "10",
        "enabled": "on",
        "window_start_0": "",
        "window_start_1": "",
        "window_end_0": "",
        "window_end_1": "",
        "canary_percent": "",
        "redirect_url": "",
        "redirect_status": "",
        "audits-TOTAL_FORMS": str(audits),
        "audits-INITIAL_FORMS": str(audits),
        "audits-MIN_NUM_FORMS": "0",
        "audits-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def merchant(admin_client, db):
    ensure_origins()
    return admin_client


BAD_INPUT = [
    ({"pattern": "/shop/rods/<script>/*"}, "characters CloudFront does not accept"),
    ({"pattern": "/shop/rods/muskie casting/*"}, "characters CloudFront does not accept"),
    ({"pattern": "/" + "a" * 255}, "CloudFront allows at most 255"),
    (
        {
            "window_start_0": "2026-11-27",
            "window_start_1": "10:00:00",
            "window_end_0": "2026-11-27",
            "window_end_1": "09:00:00",
        },
        "The sale window must end after it starts.",
    ),
    ({"canary_percent": "101"}, "A canary is a percentage from 0 to 100, not 101."),
    ({"canary_percent": "-1"}, "A canary is a percentage from 0 to 100, not -1."),
    ({"origin": "", "redirect_url": "not a url", "redirect_status": "301"}, "is not a URL"),
    # Written into every router's Location header: a line break would add headers of its own.
    (
        {"origin": "", "redirect_url": "/sale\r\nSet-Cookie:sessionid=chosen;Path=/", "redirect_status": "302"},
        "A URL holds no control characters",
    ),
    ({"origin": "", "redirect_url": "/\\evil.example/", "redirect_status": "302"}, "is not a URL"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_the_admin_rejects_bad_input_with_a_clear_message_and_saves_nothing(merchant, overrides, message):
    response = merchant.post(ADD_URL, form_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Route.objects.exists() and not RouteAudit.objects.exists()


def test_the_admin_refuses_a_26th_behaviour(merchant):
    create_routes()
    assert Route.objects.count() == 25
    response = merchant.post(ADD_URL, form_data(name="one-more", pattern="/t/more/*"))
    assert response.status_code == 200
    assert "already has 25 behaviours" in response.content.decode()
    assert Route.objects.count() == 25 and not Route.objects.filter(name="one-more").exists()


def test_the_admin_adds_a_route_with_an_audit_entry(merchant, admin_user):
    response = merchant.post(ADD_URL, form_data())
    assert response.status_code == 302
    route = Route.objects.get(name="muskie")
    assert route.enabled and route.origin.name == "hotpath"
    audit = RouteAudit.objects.get()
    assert audit.action == "create" and audit.actor == f"admin:{admin_user.username}"
    assert audit.before is None and audit.after["pattern"] == "/shop/rods/muskie-casting-rod/*"


def test_the_preview_shows_the_change_and_saves_nothing(merchant):
    response = merchant.post(ADD_URL, form_data(_preview="Preview"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Preview only: nothing was saved" in content
    assert "edge-preview" in content
    assert "+   1. muskie  /shop/rods/muskie-casting-rod/*  -&gt; hotpath" in content
    assert "+  /shop/rods/muskie-casting-rod/*  -&gt; hotpath  CachingDisabled+AllViewerExceptHostHeader" in content
    assert not Route.objects.exists() and not RouteAudit.objects.exists()


def test_the_preview_warns_of_a_route_that_can_never_match(merchant):
    services.route_create(actor="t", name="rods", pattern="/shop/rods/*", origin="monolith", enabled=True)
    response = merchant.post(ADD_URL, form_data(position="20", _preview="Preview"))
    assert "can never match: the earlier route rods" in response.content.decode()


def test_disable_action_then_rollback_from_the_audit_trail_in_one_step(merchant):
    route, _ = services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    preview = merchant.post("/admin/edge/route/", {"action": "disable_routes", "_selected_action": [route.pk]})
    content = html.unescape(preview.content.decode())
    assert "Preview of the change" in content
    assert "-   1. muskie  /shop/rods/muskie-casting-rod/*  -> hotpath" in content
    route.refresh_from_db()
    assert route.enabled, "nothing changes before the preview is confirmed"
    merchant.post("/admin/edge/route/", {"action": "disable_routes", "_selected_action": [route.pk], "apply": "yes"})
    route.refresh_from_db()
    assert not route.enabled
    disable = RouteAudit.objects.filter(action="disable").get()
    assert disable.before["enabled"] is True and disable.after["enabled"] is False
    merchant.post("/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [disable.pk]})
    route.refresh_from_db()
    assert route.enabled
    assert RouteAudit.objects.filter(action="rollback").count() == 1


def test_a_deleted_route_comes_back_from_its_audit_entry(merchant):
    route, _ = services.route_create(
        actor="t", name="legacy", pattern="/legacy-api/*", origin="legacy-api", canary_percent=20
    )
    merchant.post(f"/admin/edge/route/{route.pk}/delete/", {"post": "yes"})
    assert not Route.objects.exists()
    deleted = RouteAudit.objects.get(action="delete")
    merchant.post("/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [deleted.pk]})
    restored = Route.objects.get(name="legacy")
    assert restored.canary_percent == 20 and restored.origin.name == "legacy-api"


def test_roll_back_last_change_action_on_a_route(merchant):
    route, _ = services.route_create(actor="t", name="r", pattern="/a/*", origin="hotpath", enabled=True)
    response = merchant.post(f"/admin/edge/route/{route.pk}/change/", form_data(route, name="r", pattern="/b/*"))
    assert response.status_code == 302
    assert Route.objects.get(pk=route.pk).pattern == "/b/*"
    merchant.post("/admin/edge/route/", {"action": "roll_back_last_change", "_selected_action": [route.pk]})
    assert Route.objects.get(pk=route.pk).pattern == "/a/*"


def test_the_tester_explains_which_route_serves_a_uri_and_why(merchant):
    create_routes()
    response = merchant.get("/admin/edge/route/tester/", {"uri": "/t/order/special/x"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "Served by: order-a" in content
    assert "pattern matches: first match wins" in content
    response = merchant.get("/admin/edge/route/tester/", {"uri": "/t/win/future/a"})
    content = response.content.decode()
    assert "Served by: win-catch" in content and "sale window is closed" in content
    response = merchant.get("/admin/edge/route/tester/", {"uri": "/t/canary/a", "canary_cookie": "buyer-26"})
    assert "Served by: default" in response.content.decode()
    assert "outside the canary" in response.content.decode()


def test_the_admin_pages_render(merchant):
    create_routes()
    route = Route.objects.get(name="muskie")
    for url in (
        "/admin/edge/route/",
        f"/admin/edge/route/{route.pk}/change/",
        "/admin/edge/origin/",
        "/admin/edge/routeaudit/",
        ADD_URL,
    ):
        assert merchant.get(url).status_code == 200, url


def test_staff_who_may_only_look_cannot_switch_or_roll_back_routes(viewer, nobody):
    ensure_origins()
    route, _ = services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    audit = RouteAudit.objects.get()
    refused = [
        viewer.post("/admin/edge/route/", {"action": "disable_routes", "_selected_action": [route.pk], "apply": "y"}),
        viewer.post("/admin/edge/route/", {"action": "roll_back_last_change", "_selected_action": [route.pk]}),
        viewer.post("/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [audit.pk]}),
        nobody.get("/admin/edge/route/tester/", {"uri": "/shop/", "include_disabled": "on"}),
    ]

    assert [response.status_code for response in refused] == [403, 403, 403, 403]
    route.refresh_from_db()
    assert route.enabled and RouteAudit.objects.count() == 1


# nginx's `server` line takes an origin's domain as written: anything but a host is syntax.
INJECTED_DOMAIN = "127.0.0.1:9;\n}\nserver {\n    listen 8899;\n    location / { root /; autoindex on; }\n}\n"


@pytest.mark.parametrize(
    "domain", [INJECTED_DOMAIN, "shop.example;", "127.0.0.1:8000", "shop example", "-shop.example"]
)
def test_an_origins_domain_must_be_a_host_name(merchant, domain):
    origin = Origin.objects.get(name="monolith")
    data = {"name": origin.name, "kind": origin.kind, "domain": domain, "protocol": origin.protocol}
    data |= {"port": origin.port, "path": origin.path, "is_default": "on"}
    response = merchant.post(f"/admin/edge/origin/{origin.pk}/change/", data)
    assert response.status_code == 200
    assert "is not a host" in response.content.decode()
    assert Origin.objects.get(pk=origin.pk).domain == origin.domain


def test_a_route_page_loaded_before_the_route_was_switched_off_cannot_switch_it_back_on(merchant):
    route, _ = services.route_create(actor="t", name="r", pattern="/a/*", origin="monolith", enabled=True)
    page = merchant.get(f"/admin/edge/route/{route.pk}/change/")
    version = page.context["adminform"].form["loaded_version"].value()
    services.route_set_enabled(actor="sale", route=route, enabled=False)  # a sale closed meanwhile

    stale = merchant.post(
        f"/admin/edge/route/{route.pk}/change/",
        form_data(route, name="r", pattern="/a/*", origin=str(route.origin_id), position="20", loaded_version=version),
    )

    assert stale.status_code == 200
    assert "was changed since you opened this page" in " ".join(stale.context["adminform"].form.non_field_errors())
    route.refresh_from_db()
    assert (route.enabled, route.position) == (False, 10)


def test_enabling_or_rolling_back_a_hot_path_route_for_a_product_with_no_sale_warns_before_and_after(merchant):
    from shop.models import Category, Product

    rods = Category.objects.create(name="Rods", slug="rods")
    Product.objects.create(category=rods, title="Pike Rod", slug="pike-rod", price_cents=100)
    route, _ = services.route_create(actor="t", name="pike", pattern="/shop/rods/pike-rod/*", origin="hotpath")

    preview = merchant.post("/admin/edge/route/", {"action": "enable_routes", "_selected_action": [route.pk]})
    assert "Pike Rod (/shop/rods/pike-rod/) has no open sale" in html.unescape(preview.content.decode())

    services.route_set_enabled(actor="t", route=route, enabled=True)
    services.route_set_enabled(actor="sale", route=route, enabled=False)
    rolled = merchant.post(
        "/admin/edge/route/", {"action": "roll_back_last_change", "_selected_action": [route.pk]}, follow=True
    )
    shown = [str(m) for m in rolled.context["messages"]]
    assert Route.objects.get(pk=route.pk).enabled
    assert any("has no open sale" in m for m in shown), shown


def test_rolling_back_an_older_change_never_undoes_a_later_one(merchant):
    route, _ = services.route_create(actor="t", name="r", pattern="/a/*", origin="monolith", enabled=True)
    route.canary_percent = 10
    services.route_save(actor="t", route=route)
    canary = RouteAudit.objects.filter(action="update").get()
    services.route_set_enabled(actor="sale", route=route, enabled=False)  # the sale closed

    merchant.post("/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [canary.pk]})

    route.refresh_from_db()
    assert (route.enabled, route.canary_percent) == (False, None), "only the canary was rolled back"

    route.canary_percent = 20
    services.route_save(actor="t", route=route)
    refused = merchant.post(
        "/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [canary.pk]}, follow=True
    )
    shown = [str(m) for m in refused.context["messages"]]
    assert any("changed again since (canary_percent)" in m for m in shown), shown
    assert Route.objects.get(pk=route.pk).canary_percent == 20


@pytest.fixture
def route_changer(db, django_user_model):
    """Staff who may change routes and read their audit trail, but neither add nor delete a route."""
    from django.contrib.auth.models import Permission

    from tests.conftest import _staff_client

    ensure_origins()
    codenames = ["view_route", "change_route", "view_routeaudit"]
    return _staff_client(django_user_model, "switcher", Permission.objects.filter(codename__in=codenames))


def test_rolling_back_a_route_s_creation_deletes_it_only_for_staff_who_may_delete_routes(route_changer):
    route, _ = services.route_create(actor="t", name="sale", pattern="/shop/rods/*", origin="hotpath", enabled=True)
    created = RouteAudit.objects.get(action="create")

    from_trail = route_changer.post(
        "/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [created.pk]}, follow=True
    )
    from_routes = route_changer.post(
        "/admin/edge/route/", {"action": "roll_back_last_change", "_selected_action": [route.pk]}, follow=True
    )

    assert Route.objects.filter(pk=route.pk).exists(), "a route deleted without the permission to delete routes"
    shown = [str(m) for response in (from_trail, from_routes) for m in response.context["messages"]]
    assert len([m for m in shown if "may not delete routes" in m]) == 2, shown
    assert not RouteAudit.objects.filter(action="rollback").exists()


def test_rolling_back_a_route_s_deletion_adds_it_back_only_for_staff_who_may_add_routes(route_changer):
    route, _ = services.route_create(actor="t", name="legacy", pattern="/legacy-api/*", origin="legacy-api")
    services.route_delete(actor="t", route=route)
    deleted = RouteAudit.objects.get(action="delete")

    response = route_changer.post(
        "/admin/edge/routeaudit/", {"action": "roll_back", "_selected_action": [deleted.pk]}, follow=True
    )

    assert not Route.objects.exists(), "a route added without the permission to add routes"
    assert any("may not add routes" in str(m) for m in response.context["messages"])
