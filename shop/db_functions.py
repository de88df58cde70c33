"""Database functions the shop compares email addresses with, the index that serves them, and what
the shop's migrations run on PostgreSQL while the release before still serves. Kept apart from
the models and the finders, so that both (and their migrations) import them."""

from __future__ import annotations

import string

from django.db import models
from django.db.models import CharField, Func, IntegerField


class AsciiLower(Func):
    """Text with its ASCII letters lower-cased and nothing else changed, as email_key folds a
    local part. SQLite's LOWER() does just that (built without ICU, as Python's is); PostgreSQL's
    LOWER() and UPPER() (behind `iexact`) fold every script's letters, some into ASCII ones
    (`ı`, `ſ`, the Kelvin sign)."""

    function = "LOWER"
    output_field = CharField()
    postgresql_template = f"TRANSLATE(%(expressions)s, '{string.ascii_uppercase}', '{string.ascii_lowercase}')"

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template=self.postgresql_template, **extra_context)


class OctetLength(Func):
    """The bytes of a text as the database stores it (UTF-8): more than its characters when it
    holds any beyond ASCII."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context)


def email_folded_index(field: str, *, name: str) -> models.Index:
    """The index on AsciiLower(field) as a model declares it. A migration builds it with
    email_index_create, which on PostgreSQL adds what the declaration cannot say portably (the
    operator class) and builds it without blocking writes; SQLite, which remakes a table to
    alter it, makes it again from this declaration."""
    return models.Index(AsciiLower(field), name=name)


def email_index_create(schema_editor, *, table: str, column: str, name: str) -> None:
    """Builds the index on AsciiLower(column), which shop.order_finders.with_email's narrowing
    reads, so finding a mailbox's orders is an index read, not a scan of every order. On
    PostgreSQL it is built CONCURRENTLY (the table takes orders while it builds: run it from a
    migration that is not atomic), with text_pattern_ops, which serves both the spellings' `IN`
    and the local part's prefix `LIKE` whatever the database's collation."""
    quote = schema_editor.quote_name
    if schema_editor.connection.vendor == "postgresql":
        folded = AsciiLower.postgresql_template % {"expressions": quote(column)}
        index_drop(schema_editor, name=name)  # an invalid one a stopped build left
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY {quote(name)} ON {quote(table)} ({folded} text_pattern_ops)")
    else:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} (LOWER({quote(column)}))")


def index_drop(schema_editor, *, name: str) -> None:
    """Drops an index if it is there; on PostgreSQL without blocking the table's writes."""
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}")


def index_build(schema_editor, model, index) -> None:
    """Builds an index a migration adds to a table in use: on PostgreSQL CONCURRENTLY, so the
    table takes writes while it builds (the migration is not atomic), after dropping an invalid
    one that a stopped build left behind."""
    index_drop(schema_editor, name=index.name)
    concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    schema_editor.add_index(model, index, **concurrently)


LOCK_TIMEOUT = "5s"


def lock_wait_bounded(apps, schema_editor) -> None:
    """A migration's first step when it alters a table the release before reads and writes while
    it runs (README, Upgrading): on PostgreSQL its ALTER gives up after LOCK_TIMEOUT instead of
    queueing behind a long transaction on that table (a backup, a report) with every request of
    the shop for that table queued behind the ALTER. Run `migrate` again when it gave up."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
