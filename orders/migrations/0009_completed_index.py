"""Orders by when they became final (`completed_at`): the live queue view counts each of the
last ten minutes' and the sale dashboard the last minute's, every few seconds during a sale;
without an index each count reads every order of every sale. Partial: an order still
processing has no `completed_at`.

On PostgreSQL the index is built and dropped CONCURRENTLY, so the hot path and the workers keep
writing while this runs (the migration is not atomic; one stopped midway is run again)."""

from django.db import migrations, models

from shop.db_functions import index_build, index_drop

COMPLETED_INDEX = models.Index(
    fields=["completed_at"], name="hot_order_completed", condition=models.Q(completed_at__isnull=False)
)


def forwards(apps, schema_editor):
    hot_order = apps.get_model("orders", "HotOrder")
    index_build(schema_editor, hot_order, COMPLETED_INDEX)


def backwards(apps, schema_editor):
    index_drop(schema_editor, name=COMPLETED_INDEX.name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0008_card_free_fingerprints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="hotorder", index=COMPLETED_INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
