"""The card's last four digits on the storefront's receipt, asked for by the order lookup."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0006_verifiedemail"),
    ]

    operations = [
        migrations.AddField(
            model_name="placedorder",
            name="card_last4",
            field=models.CharField(blank=True, editable=False, max_length=4),
        ),
    ]
