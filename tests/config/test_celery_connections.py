"""A Celery task keeps its database connection as a request does: across tasks while
CONN_MAX_AGE allows, closed when it is obsolete or broken, never inside an eager caller."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from config.celery import app, connections_tidy

pytestmark = pytest.mark.django_db(transaction=True)


def _task(*, eager: bool = False):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celerys_fixup_no_longer_closes_the_connection_around_every_task():
    assert DjangoWorkerFixup(app).db_reuse_max >= 100


def test_a_kept_connection_serves_the_next_task(settings):
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        connections_tidy(task=_task())
        connection.ensure_connection()
        kept = connection.connection
        connections_tidy(task=_task())
        connection.ensure_connection()
        assert connection.connection is kept
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = settings.DATABASES["default"]["CONN_MAX_AGE"]
        connection.close()


def test_with_conn_max_age_0_each_task_has_a_connection_of_its_own(settings):
    connection.settings_dict["CONN_MAX_AGE"] = 0
    try:
        connections_tidy(task=_task())
        connection.ensure_connection()
        connections_tidy(task=_task())
        assert connection.connection is None
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = settings.DATABASES["default"]["CONN_MAX_AGE"]


def test_a_connection_the_database_dropped_is_replaced_before_the_next_task_uses_it(settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL ends the connection here")
    import psycopg

    connection.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    try:
        connections_tidy(task=_task())
        connection.ensure_connection()
        dropped = connection.connection.info.backend_pid
        params = connection.get_connection_params()
        with psycopg.connect(**params, autocommit=True) as admin:
            # With a timeout, PostgreSQL answers once the backend has ended, so the
            # health check cannot run before it does.
            ended = admin.execute("SELECT pg_terminate_backend(%s, 10000)", [dropped]).fetchone()[0]
            assert ended
        connections_tidy(task=_task())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != dropped
    finally:
        connection.settings_dict.update(
            CONN_MAX_AGE=settings.DATABASES["default"]["CONN_MAX_AGE"],
            CONN_HEALTH_CHECKS=settings.DATABASES["default"]["CONN_HEALTH_CHECKS"],
        )
        connection.close()


def test_an_eager_task_leaves_its_callers_connection_alone():
    connection.settings_dict["CONN_MAX_AGE"] = 0
    try:
        connection.ensure_connection()
        kept = connection.connection
        connections_tidy(task=_task(eager=True))
        assert connection.connection is kept
    finally:
        connection.close()
