"""Where the legacy API is served: its own deployment always, the all-in-one server only
outside production."""

from __future__ import annotations

import importlib

import pytest
from django.urls import Resolver404, resolve

import config.urls

pytestmark = pytest.mark.django_db


@pytest.fixture
def all_in_one_urls(settings):
    """config.urls built again under the settings the test sets, and put back afterwards."""

    def build(env: str):
        settings.DJANGO_ENV = env
        return importlib.reload(config.urls)

    yield build
    settings.DJANGO_ENV = "test"
    importlib.reload(config.urls)


def test_the_all_in_one_server_mounts_the_legacy_api_outside_production(all_in_one_urls):
    urls = all_in_one_urls("development")

    assert resolve("/legacy-api/orders", urlconf=urls).url_name == "order-list"


def test_the_all_in_one_server_does_not_mount_the_legacy_api_in_production(all_in_one_urls):
    urls = all_in_one_urls("production")

    try:
        match = resolve("/legacy-api/orders", urlconf=urls)
    except Resolver404:
        return
    # Should the shop's own pages ever catch any path, it must still not be the legacy API.
    assert match.namespace != "legacy_api"


def test_the_legacy_deployment_always_serves_it():
    assert resolve("/legacy-api/orders", urlconf="config.urls_legacy").url_name == "order-list"
