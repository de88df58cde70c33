"""Every page of the shop carries a Content-Security-Policy that runs scripts from its own origin
only; JSON answers carry none, and the media files keep their own, stricter policy."""

from __future__ import annotations

import pytest

from config.page_policy import HEADER

pytestmark = pytest.mark.django_db


def policy_of(response) -> dict[str, str]:
    return {
        name: value.strip() for name, _, value in (part.strip().partition(" ") for part in response[HEADER].split(";"))
    }


@pytest.mark.parametrize("path", ["/shop/", "/shop/rods/", "/accounts/login/", "/admin/login/", "/shop/no-such-page/"])
def test_a_page_runs_scripts_of_its_own_origin_only_and_cannot_be_framed(client, rod, path):
    response = client.get(path)

    assert response["Content-Type"].startswith("text/html")
    policy = policy_of(response)
    assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["form-action"] == "'self'"
    assert policy["style-src"] == "'self'"  # no style attribute or element applies
    assert "unsafe-inline" not in response[HEADER] and "unsafe-eval" not in response[HEADER]


def test_django_s_debug_pages_carry_none_as_their_styles_are_inline(client, rod, settings):
    settings.DEBUG = True
    response = client.get("/shop/no-such-page/")

    assert response.status_code == 404 and HEADER not in response
    settings.DEBUG = False
    assert HEADER in client.get("/shop/no-such-page/")


def test_a_json_answer_carries_no_policy(client, rod):
    response = client.get("/legacy-api/orders")  # 401, in JSON

    assert response["Content-Type"].startswith("application/json")
    assert HEADER not in response


def test_an_empty_setting_sends_none(client, rod, settings):
    settings.CONTENT_SECURITY_POLICY = ""

    assert HEADER not in client.get("/shop/")
