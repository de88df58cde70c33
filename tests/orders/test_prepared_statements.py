"""On PostgreSQL a statement a connection runs again and again is prepared there, so the
database parses and plans the hot path's acceptance once per connection, not per order; a
deployment behind a pooler that moves transactions between sessions turns that off."""

import pytest
from django.db import connection

from tests.conftest import settings_of_fresh_process
from tests.orders.conftest import order_accept_as_buyer


def _prepared(fragment: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{fragment}%"])
        return cursor.fetchone()[0]


def test_the_acceptance_statement_is_prepared_once_a_connection_has_run_it_a_few_times(allocation):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's: set DATABASE_URL=postgres://...")
    fragment = "UPDATE orders_saleallocation SET reserved = reserved +"
    for _ in range(6):
        order_accept_as_buyer(quantity=1)
    assert _prepared(fragment) == 1
    for _ in range(3):  # and kept: the same one again, not a new one each time
        order_accept_as_buyer(quantity=1)
    assert _prepared(fragment) == 1
    allocation.refresh_from_db()
    assert allocation.reserved == 9


def _database_options(**env: str) -> dict:
    expression = "settings.DATABASES['default'].get('OPTIONS', {})"
    return settings_of_fresh_process(expression, unset=("DATABASE_PREPARED_STATEMENTS",), **env)


def test_prepared_statements_are_on_for_postgresql_and_can_be_turned_off():
    url = "postgres://postgres@127.0.0.1:5432/shop"
    on = _database_options(DATABASE_URL=url)
    assert on.get("server_side_binding") is True and on.get("prepare_threshold") == 5
    off = _database_options(DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0")
    assert "server_side_binding" not in off and "prepare_threshold" not in off
    sqlite = _database_options(DATABASE_URL="sqlite:///unused.sqlite3")
    assert "server_side_binding" not in sqlite


def test_the_hot_path_s_statements_have_a_timeout_and_other_deployments_none_unless_set():
    url = "postgres://postgres@127.0.0.1:5432/shop"
    expression = "settings.DATABASES['default'].get('OPTIONS', {}).get('options')"

    def options(**env: str):
        env = {"DATABASE_URL": url, **env}
        return settings_of_fresh_process(expression, unset=("DATABASE_STATEMENT_TIMEOUT_MS", "SHOP_DEPLOYMENT"), **env)

    assert options(SHOP_DEPLOYMENT="hotpath") == "-c statement_timeout=5000"
    assert options(SHOP_DEPLOYMENT="monolith") is None
    assert options(SHOP_DEPLOYMENT="monolith", DATABASE_STATEMENT_TIMEOUT_MS="30000") == "-c statement_timeout=30000"
    assert options(SHOP_DEPLOYMENT="hotpath", DATABASE_STATEMENT_TIMEOUT_MS="0") is None
    assert options(SHOP_DEPLOYMENT="hotpath", DATABASE_URL="sqlite:///unused.sqlite3") is None
