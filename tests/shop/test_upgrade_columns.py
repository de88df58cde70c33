"""A release rolls out while the one before still serves on the new schema (README, Upgrading):
every column the migrations since then added to a table that release writes takes its rows
without naming it."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import migrate_to

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

# The last migrations of the release before, and of one that had the order emails' table.
RELEASE_BEFORE = [
    ("shop", "0010_placedorder_email_index"),
    ("orders", "0007_email_and_legacy_number_indexes"),
    ("legacy_api", "0004_callers_own_holds_and_orders"),
]
ORDER_EMAILS_BEFORE = [("shop", "0012_order_emails")]


def _columns() -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")
        tables: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            tables.setdefault(table, set()).add(column)
        return tables


def _required_without_default() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'"
        )
        return set(cursor.fetchall())


@pytest.mark.parametrize("before", [RELEASE_BEFORE, ORDER_EMAILS_BEFORE], ids=["release-before", "order-emails"])
def test_a_column_added_since_a_release_has_a_database_default(before):
    migrate_to(before)
    known = _columns()
    migrate_to(migrate_to(before).loader.graph.leaf_nodes())

    added = {(table, column) for table, columns in _columns().items() if table in known for column in columns}
    added -= {(table, column) for table, columns in known.items() for column in columns}
    assert added & _required_without_default() == set(), "rows the release before writes would be refused"


def test_a_basket_made_as_the_release_before_made_it_is_an_empty_one():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO shop_basket (created_at, updated_at) VALUES (now(), now()) "
            "RETURNING merged_lines = '{}'::jsonb"
        )
        assert cursor.fetchone() == (True,)
