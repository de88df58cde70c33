"""The kept connection's health check: no round trip while the server is there, and a
connection the server ended is found unusable before a request fails on it."""

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as Plain

from tests.conftest import eventually

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL backend's check: set DATABASE_URL=postgres://...")


def test_a_healthy_connection_is_judged_without_asking_the_server(monkeypatch):
    connection.ensure_connection()

    def round_trip(self):
        raise AssertionError("asked the server")

    monkeypatch.setattr(Plain, "is_usable", round_trip)
    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_unusable():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    admin_url = f"postgresql://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    try:
        eventually(lambda: not connection.is_usable(), timeout=5, message="a terminated session looked usable")
    finally:
        connection.close()
