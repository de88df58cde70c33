"""The writing transaction's id (PostgreSQL's xid8), which orders the log by commit."""

from __future__ import annotations

from django.db import models


class CurrentTransactionId(models.Func):
    """`pg_current_xact_id()` as the column's default, so the INSERT itself records it. Other
    databases write one transaction at a time and keep NULL: position order is commit order."""

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "pg_current_xact_id()", []


class TransactionIdField(models.Field):
    """An xid8 column on PostgreSQL, read as an int.

    Values are sent as text: PostgreSQL has no cast from bigint to xid8, but takes an untyped
    literal as one, so `xid > '123'` compares as xid8."""

    description = "transaction id (xid8)"

    def db_type(self, connection):
        return "xid8" if connection.vendor == "postgresql" else "bigint"

    def from_db_value(self, value, expression, connection):
        return None if value is None else int(value)

    def to_python(self, value):
        return None if value is None else int(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or hasattr(value, "resolve_expression"):
            return value
        return str(int(value)) if connection.vendor == "postgresql" else int(value)
