"""Sale orders are found by their address's folded form (My orders, Find an order, signed links:
shop.order_finders.with_email) and by the legacy API's number that earlier confirmation emails
carry: an index for each, so neither lookup reads every order. Both are built without blocking
the hot path's inserts on PostgreSQL (CONCURRENTLY, so this migration is not atomic). The index
on the address as written goes: nothing reads it."""

from django.db import migrations, models

from shop.order_finders import email_index_create, email_index_drop

EMAIL_INDEX = "hot_order_email_folded"
LEGACY_NUMBER_INDEX = models.Index(
    fields=["legacy_number"], name="hot_order_legacy_number", condition=~models.Q(legacy_number="")
)


def forwards(apps, schema_editor):
    email_index_create(schema_editor, table="orders_hotorder", column="customer_email", name=EMAIL_INDEX)
    hot_order = apps.get_model("orders", "HotOrder")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {LEGACY_NUMBER_INDEX.name}")
        schema_editor.add_index(hot_order, LEGACY_NUMBER_INDEX, concurrently=True)
    else:
        schema_editor.add_index(hot_order, LEGACY_NUMBER_INDEX)


def backwards(apps, schema_editor):
    email_index_drop(schema_editor, name=EMAIL_INDEX)
    schema_editor.remove_index(apps.get_model("orders", "HotOrder"), LEGACY_NUMBER_INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0006_dead_letter_cancel"),
    ]

    operations = [
        # Nothing compares the address as written any more: the folded index takes its place,
        # so an accepted order's insert keeps the same number of indexes.
        migrations.AlterField(model_name="hotorder", name="customer_email", field=models.EmailField(max_length=254)),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="hotorder", index=LEGACY_NUMBER_INDEX)],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
