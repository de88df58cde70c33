"""Placed orders by when they were placed (and their id, for ties): the admin's list shows the
newest first and its date drill-down asks for the first and last; without an index each page
read and sorted every order the shop ever placed. On PostgreSQL it is built and dropped
CONCURRENTLY, so checkouts keep recording receipts while it builds (the migration is not
atomic; one stopped midway is run again)."""

from django.db import migrations, models

from shop.db_functions import index_build, index_drop

PLACED_INDEX = models.Index(fields=["placed_at", "id"], name="placed_order_placed")


def forwards(apps, schema_editor):
    placed_order = apps.get_model("shop", "PlacedOrder")
    index_build(schema_editor, placed_order, PLACED_INDEX)


def backwards(apps, schema_editor):
    index_drop(schema_editor, name=PLACED_INDEX.name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0019_card_free_fingerprints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="placedorder", index=PLACED_INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
