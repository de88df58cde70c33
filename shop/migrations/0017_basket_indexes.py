"""The baskets' two partial indexes: guests' baskets by their last change (the hourly prune,
shop.housekeeping) and baskets that joined an account's (cleared when that one is deleted). The
table holds every guest's basket: on PostgreSQL they are built CONCURRENTLY, so the shop takes
baskets while they build, and this migration is not atomic."""

from django.db import migrations, models

from shop.db_functions import index_drop

INDEXES = {
    "basket_guest_updated": ("updated_at", "owner_id IS NULL"),
    "basket_merged_into": ("merged_into_id", "merged_into_id IS NOT NULL"),
}


def forwards(apps, schema_editor):
    quote = schema_editor.quote_name
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name, (column, where) in INDEXES.items():
        index_drop(schema_editor, name=name)  # an invalid one a stopped build left
        schema_editor.execute(
            f"CREATE INDEX{concurrently} {quote(name)} ON {quote('shop_basket')} ({quote(column)}) WHERE {where}"
        )


def backwards(apps, schema_editor):
    for name in INDEXES:
        index_drop(schema_editor, name=name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0016_product_picture_checked"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="basket",
                    index=models.Index(
                        fields=["updated_at"], name="basket_guest_updated", condition=models.Q(owner__isnull=True)
                    ),
                ),
                migrations.AddIndex(
                    model_name="basket",
                    index=models.Index(
                        fields=["merged_into"], name="basket_merged_into", condition=models.Q(merged_into__isnull=False)
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
