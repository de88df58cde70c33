"""Sale orders are found by their address's folded form (My orders, Find an order, signed links:
shop.order_finders.with_email) and by the legacy API's number that earlier confirmation emails
carry: an index for each, so neither lookup reads every order. The index on the address as
written goes: nothing reads it, and an accepted order's insert writes one index fewer.

On PostgreSQL every index is built and dropped CONCURRENTLY, so the hot path and the workers
keep writing while this runs (the migration is not atomic; one stopped midway is run again)."""

from django.db import migrations, models

from shop.db_functions import email_folded_index, email_index_create, index_drop

EMAIL_INDEX = "hot_order_email_folded"
LEGACY_NUMBER_INDEX = models.Index(
    fields=["legacy_number"], name="hot_order_legacy_number", condition=~models.Q(legacy_number="")
)
# What `customer_email = EmailField(db_index=True)` made: Django's names, and on PostgreSQL the
# second, for LIKE on a varchar.
AS_WRITTEN = "orders_hotorder_customer_email_e02f9dda"
AS_WRITTEN_LIKE = "orders_hotorder_customer_email_e02f9dda_like"


def forwards(apps, schema_editor):
    hot_order = apps.get_model("orders", "HotOrder")
    postgresql = schema_editor.connection.vendor == "postgresql"
    email_index_create(schema_editor, table="orders_hotorder", column="customer_email", name=EMAIL_INDEX)
    index_drop(schema_editor, name=LEGACY_NUMBER_INDEX.name)  # an invalid one a stopped build left
    schema_editor.add_index(hot_order, LEGACY_NUMBER_INDEX, **({"concurrently": True} if postgresql else {}))
    index_drop(schema_editor, name=AS_WRITTEN)
    index_drop(schema_editor, name=AS_WRITTEN_LIKE)


def backwards(apps, schema_editor):
    quote = schema_editor.quote_name
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    index_drop(schema_editor, name=AS_WRITTEN)  # an invalid one a stopped build left
    schema_editor.execute(f"CREATE INDEX{concurrently} {quote(AS_WRITTEN)} ON orders_hotorder (customer_email)")
    if concurrently:
        index_drop(schema_editor, name=AS_WRITTEN_LIKE)
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {quote(AS_WRITTEN_LIKE)} ON orders_hotorder (customer_email varchar_pattern_ops)"
        )
    index_drop(schema_editor, name=LEGACY_NUMBER_INDEX.name)
    index_drop(schema_editor, name=EMAIL_INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0006_dead_letter_cancel"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="hotorder", name="customer_email", field=models.EmailField(max_length=254)
                ),
                migrations.AddIndex(model_name="hotorder", index=email_folded_index("customer_email", name=EMAIL_INDEX)),
                migrations.AddIndex(model_name="hotorder", index=LEGACY_NUMBER_INDEX),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
