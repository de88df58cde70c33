"""What a merchant sees on the edge's admin pages in their first hour: a preview that reads as a
preview (not as an error), route changes named as such, and a tester with a wide URI box."""

from __future__ import annotations

import html
import re

import pytest

from edge import services
from edge.models import Route, RouteAudit
from tests.edge.conftest import ensure_origins
from tests.edge.test_admin import ADD_URL, form_data


@pytest.fixture
def merchant(admin_client, db):
    ensure_origins()
    return admin_client


def _title(content: str) -> str:
    return html.unescape(re.search(r"<title>(.*?)</title>", content, re.S).group(1)).strip()


def test_a_successful_preview_is_a_normal_page_with_no_error_banner(merchant):
    response = merchant.post(ADD_URL, form_data(_preview="Preview"))
    content = response.content.decode()

    assert response.status_code == 200
    assert "Preview only: nothing was saved" in content
    assert 'id="edge-preview"' in content
    assert "errornote" not in content and "Please correct the error" not in content
    assert not _title(content).startswith("Error"), _title(content)
    assert "(preview)" in _title(content)
    assert not Route.objects.exists() and not RouteAudit.objects.exists()


def test_a_preview_of_a_changed_route_shows_the_diff_and_changes_nothing(merchant):
    route, _ = services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    response = merchant.post(
        f"/admin/edge/route/{route.pk}/change/", form_data(route, canary_percent="25", _preview="Preview")
    )
    content = html.unescape(response.content.decode())

    assert "canary 25%" in content
    assert "errornote" not in content
    route.refresh_from_db()
    assert route.canary_percent is None
    assert RouteAudit.objects.filter(route=route).count() == 1  # only its creation


def test_a_preview_of_bad_input_is_still_an_error_naming_the_field(merchant):
    response = merchant.post(ADD_URL, form_data(canary_percent="101", _preview="Preview"))
    content = response.content.decode()

    assert "errornote" in content
    assert "A canary is a percentage from 0 to 100, not 101." in content
    assert _title(content).startswith("Error")
    assert 'id="edge-preview"' not in content


def test_the_audit_list_speaks_of_route_changes(merchant):
    services.route_create(actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath")
    services.route_create(actor="t", name="reels", pattern="/shop/reels/*", origin="monolith")
    content = merchant.get("/admin/edge/routeaudit/").content.decode()

    assert "2 route changes" in content
    assert "audit trail" not in content.lower()
    assert "Route changes" in merchant.get("/admin/").content.decode()


def test_the_tester_labels_the_uri_box_uri_and_makes_it_wide(merchant):
    content = merchant.get("/admin/edge/route/tester/").content.decode()

    assert re.search(r'<label for="id_uri">URI:</label>', content)
    assert "Uri:" not in content
    box = re.search(r'<input[^>]*name="uri"[^>]*>', content).group(0)
    assert 'size="80"' in box and "edge-uri" in box
    assert "shop/admin.css" in content  # where the box gets its width


def test_the_tester_still_explains_a_decision(merchant):
    services.route_create(
        actor="t", name="muskie", pattern="/shop/rods/muskie-casting-rod/*", origin="hotpath", enabled=True
    )
    response = merchant.get("/admin/edge/route/tester/", {"uri": "/shop/rods/muskie-casting-rod/"})
    assert "Served by: muskie" in response.content.decode()


def test_the_preview_button_is_offered_only_to_staff_who_may_save_the_route(merchant, viewer):
    route, _ = services.route_create(actor="t", name="r", pattern="/a/*", origin="monolith")

    looking = viewer.get(f"/admin/edge/route/{route.pk}/change/")
    changing = merchant.get(f"/admin/edge/route/{route.pk}/change/")

    assert looking.status_code == 200 and 'name="_preview"' not in looking.content.decode()
    assert 'name="_preview"' in changing.content.decode()
    assert 'name="_preview"' in merchant.get(ADD_URL).content.decode()
