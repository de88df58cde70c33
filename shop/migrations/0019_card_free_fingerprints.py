"""The schema of buy-now fingerprints that hold no more of the card than its last four digits: a
refusal for a declined card may hold none, and keeps the card-wide one of the release before apart
(`fingerprint_before`, with a database default for that release). The rows are renewed by 0021,
run once no process of the release before serves (README, Upgrading): that release matches a
replay only against the card-wide form it stored."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0018_product_price_within_the_order_backends_total"),
        ("legacy_api", "0004_callers_own_holds_and_orders"),
    ]

    operations = [
        migrations.AlterField(
            model_name="buynowrefusal",
            name="fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="buynowrefusal",
            name="fingerprint_before",
            field=models.CharField(blank=True, db_default="", default="", editable=False, max_length=64),
        ),
    ]
