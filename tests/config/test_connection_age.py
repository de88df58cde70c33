"""CONN_MAX_AGE=none keeps each thread's database connection for the process's life: a server
that was quiet for a minute does not reopen all its connections in the first seconds of a sale."""

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import connection

from config.settings import conn_max_age
from tests.conftest import settings_of_fresh_process


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 0), ("", 0), ("0", 0), ("60", 60), ("none", None), (" None ", None)]
)
def test_the_age_is_seconds_or_none_for_the_process_life(value, seconds):
    assert conn_max_age(value) == seconds


def test_an_age_that_is_neither_is_refused_at_start():
    with pytest.raises(ImproperlyConfigured, match="CONN_MAX_AGE"):
        conn_max_age("forever")


def _database_settings(**env: str) -> dict:
    expression = "{k: settings.DATABASES['default'][k] for k in ('CONN_MAX_AGE', 'CONN_HEALTH_CHECKS')}"
    return settings_of_fresh_process(expression, unset=("CONN_MAX_AGE",), **env)


def test_a_kept_connection_is_health_checked_whatever_its_age():
    assert _database_settings(CONN_MAX_AGE="none") == {"CONN_MAX_AGE": None, "CONN_HEALTH_CHECKS": True}
    assert _database_settings(CONN_MAX_AGE="60") == {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
    assert _database_settings() == {"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("age", "kept"), [(None, True), (60, False)])
def test_a_connection_outlives_a_quiet_hour_only_without_an_age(age, kept, monkeypatch):
    saved = {k: connection.settings_dict[k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=age, CONN_HEALTH_CHECKS=True)
    try:
        request_started.send(sender=None)
        connection.ensure_connection()
        first = connection.connection
        request_finished.send(sender=None)
        # An hour on, the next request comes.
        later = time.monotonic() + 3600
        monkeypatch.setattr(time, "monotonic", lambda: later)
        request_started.send(sender=None)
        connection.ensure_connection()
        assert (connection.connection is first) is kept
        request_finished.send(sender=None)
    finally:
        monkeypatch.undo()
        connection.close()
        connection.settings_dict.update(saved)
