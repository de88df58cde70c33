"""Holds and orders belong to the caller that made them.

Every hold made before this was the sale's, taken by the hot path (legacy_client's hold
calls send its token), so each is the hot path's. An order drawn on a hold was placed by the
hold's caller; any other by the storefront, the only caller that reads orders back."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def orders_drawn_on_holds_are_their_callers(apps, schema_editor):
    Hold = apps.get_model("legacy_api", "Hold")
    Order = apps.get_model("legacy_api", "Order")
    Order.objects.filter(hold__isnull=False).update(
        caller=Subquery(Hold.objects.filter(pk=OuterRef("hold_id")).values("caller")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("legacy_api", "0003_stock_receipts"),
    ]

    operations = [
        migrations.AddField(
            model_name="hold",
            name="caller",
            field=models.CharField(default="hotpath", editable=False, max_length=32, verbose_name="owner"),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="hold",
            name="reference",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="hold",
            constraint=models.UniqueConstraint(
                fields=("caller", "reference"), name="legacy_hold_reference_unique_per_caller"
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="caller",
            field=models.CharField(default="storefront", editable=False, max_length=32),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name="OrderReader",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("caller", models.CharField(max_length=32)),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="readers",
                        to="legacy_api.order",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("order", "caller"), name="legacy_order_reader_unique")
                ],
            },
        ),
        migrations.RunPython(orders_drawn_on_holds_are_their_callers, migrations.RunPython.noop),
    ]
