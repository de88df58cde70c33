"""A placed order's state, province or county, so its address prints as the country writes it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0004_placedorder_fingerprint_confirmation"),
    ]

    operations = [
        migrations.AddField(
            model_name="placedorder",
            name="region",
            field=models.CharField(
                blank=True,
                help_text="A code (MN, QC, NSW) where the post uses one.",
                max_length=100,
                verbose_name="state, province or county",
            ),
        ),
    ]
