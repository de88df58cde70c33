"""Every admin action and custom admin view checks its permission: found by walking the admin
site, so an action or a view added later without a permission fails here."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from config.admin_base import ShopModelAdmin

STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")


def _actions():
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():
            yield pytest.param(model, model_admin, func, name, id=f"{model._meta.label_lower}:{name}")


def _custom_views():
    # Django's own custom views (a user's password form) check their permissions themselves.
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in {"auth", "axes"}:
            continue
        opts = model._meta
        standard = {f"{opts.app_label}_{opts.model_name}_{view}" for view in STANDARD_VIEWS}
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if name and name not in standard:
                yield pytest.param(model, pattern, id=name)


ACTIONS = list(_actions())
CUSTOM_VIEWS = list(_custom_views())


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_the_walk_finds_the_write_actions_and_custom_views():
    names = {param.id for param in ACTIONS} | {param.id for param in CUSTOM_VIEWS}
    assert {
        "shop.product:restock",
        "shop.product:soft_delete",
        "orders.saleallocation:make_not_hot",
        "orders.deadletter:redrive",
        "edge.route:disable_routes",
        "edge.routeaudit:roll_back",
        "orders_hotorder_live",
        "edge_route_tester",
    } <= names


@pytest.mark.parametrize(("model", "model_admin", "func", "name"), ACTIONS)
def test_every_action_declares_its_permissions(model, model_admin, func, name):
    assert getattr(func, "allowed_permissions", None), f"{name} runs for anybody who sees the list"


@pytest.mark.parametrize(("model", "model_admin", "func", "name"), ACTIONS)
def test_every_action_is_refused_to_staff_who_may_only_look(viewer, model, model_admin, func, name):
    response = viewer.post(changelist(model), {"action": name, "_selected_action": ["1"], "apply": "1"})

    # Django's and libraries' admins (users, groups, django-axes' lists) too: a refusal, not
    # "no action selected".
    assert response.status_code == 403
    assert name not in model_admin.get_actions(response.wsgi_request)


def test_the_shops_own_admins_refuse_actions_with_403():
    ours = [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in {"shop", "orders", "edge"}
    ]
    assert ours and all(isinstance(model_admin, ShopModelAdmin) for model_admin in ours)


@pytest.mark.parametrize(("model", "model_admin", "func", "name"), ACTIONS)
def test_every_action_is_refused_to_staff_without_permissions(nobody, model, model_admin, func, name):
    response = nobody.post(changelist(model), {"action": name, "_selected_action": ["1"], "apply": "1"})

    assert response.status_code == 403


@pytest.mark.parametrize(("model", "pattern"), CUSTOM_VIEWS)
def test_every_custom_view_names_the_permission_it_checks(model, pattern):
    assert getattr(pattern.callback, "admin_permission", None), f"{pattern.name} checks no permission"


@pytest.mark.parametrize(("model", "pattern"), CUSTOM_VIEWS)
def test_every_custom_view_is_refused_to_staff_without_permissions(nobody, model, pattern):
    assert nobody.get(reverse(f"admin:{pattern.name}")).status_code == 403


@pytest.mark.parametrize(("model", "pattern"), CUSTOM_VIEWS)
def test_staff_who_may_look_see_the_read_only_views_and_nothing_more(viewer, model, pattern):
    expected = 200 if getattr(pattern.callback, "admin_permission", None) == "view" else 403

    assert viewer.get(reverse(f"admin:{pattern.name}")).status_code == expected


def _dated_changelists():
    for model, model_admin in admin.site._registry.items():
        dated = [
            f.name
            for f in model._meta.get_fields()
            if getattr(f, "get_internal_type", None) and f.get_internal_type() == "DateTimeField"
        ]
        if model._meta.label_lower == "tracing.span":
            continue  # its list is the trace finder, which takes no filters
        if isinstance(model_admin, ShopModelAdmin) and dated:
            yield pytest.param(model, dated[0], id=f"{model._meta.label_lower}:{dated[0]}")


@pytest.mark.parametrize(("model", "field"), list(_dated_changelists()))
def test_a_change_list_filtered_by_a_year_out_of_range_asks_for_another_address(admin_client, model, field):
    response = admin_client.get(changelist(model), {f"{field}__year": "99999"})

    assert response.status_code == 302 and response["Location"].endswith("?e=1")
