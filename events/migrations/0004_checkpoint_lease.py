"""The checkpoint's lease, which external consumers (the EventBridge relay) hold instead of a
transaction while they wait on their target.

The previous release's relay keeps a transaction on its checkpoint row across EventBridge's
calls (a minute and more while EventBridge hangs); the ALTER would queue behind it, and every
consumer behind the ALTER. On PostgreSQL it gives up after LOCK_TIMEOUT instead: stop the
previous release's relay, or run `migrate` again."""

from django.db import migrations, models

LOCK_TIMEOUT = "5s"


def lock_timeout_set(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_pruned_mark_and_dead_letter_resolution"),
    ]

    operations = [
        migrations.RunPython(lock_timeout_set, migrations.RunPython.noop),
        migrations.AddField(
            model_name="checkpoint",
            name="claimed_by",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
        migrations.AddField(
            model_name="checkpoint",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
