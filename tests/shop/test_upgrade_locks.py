"""The migrations that alter a table the release before reads and writes while they run (README,
Upgrading) give up when a long transaction holds that table, instead of queueing their ALTER
behind it with every request for that table queued behind the ALTER; run again, they apply."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.utils import OperationalError
from psycopg import sql

from tests.conftest import migrate_to

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

HELD_AT_MOST = 30  # seconds; the holder lets go then, so a migration that waited still ends


def _holding(table: str) -> psycopg.Connection:
    """Another session in a long transaction that has read `table` (as a backup or a report does)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    holder = psycopg.connect(**params)
    holder.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return holder


@pytest.mark.parametrize(
    ("before", "migration", "table"),
    [
        ("0012_order_emails", "0013_receipt_lines_taken", "shop_placedorder"),
        ("0013_receipt_lines_taken", "0014_basket_merged_into", "shop_basket"),
    ],
)
def test_an_alter_behind_a_long_transaction_gives_up_and_applies_when_run_again(before, migration, table):
    migrate_to([("shop", before)])
    holder = _holding(table)
    letting_go = threading.Timer(HELD_AT_MOST, holder.rollback)
    letting_go.start()
    try:
        with pytest.raises(OperationalError, match="lock timeout"):
            migrate_to([("shop", migration)])
    finally:
        letting_go.cancel()
        holder.close()

    assert ("shop", migration) not in MigrationRecorder(connection).applied_migrations()
    migrate_to([("shop", migration)])
    assert ("shop", migration) in MigrationRecorder(connection).applied_migrations()
