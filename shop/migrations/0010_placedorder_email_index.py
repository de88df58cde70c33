"""A guest's orders are found by their address's folded form (shop.order_finders.with_email):
an index on it, so My orders reads the index instead of every receipt. Built without blocking
checkouts on PostgreSQL (CONCURRENTLY, so this migration is not atomic)."""

from django.db import migrations

from shop.db_functions import email_folded_index, email_index_create, index_drop

INDEX = "placed_order_email_folded"


def forwards(apps, schema_editor):
    email_index_create(schema_editor, table="shop_placedorder", column="email", name=INDEX)


def backwards(apps, schema_editor):
    index_drop(schema_editor, name=INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0009_verifiedemail_by_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="placedorder", index=email_folded_index("email", name=INDEX)),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
