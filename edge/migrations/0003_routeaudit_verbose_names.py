"""Route changes are listed as "route changes", not as "route audit trail" items."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("edge", "0002_default_origins"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="routeaudit",
            options={
                "ordering": ["-at", "-pk"],
                "verbose_name": "route change",
                "verbose_name_plural": "route changes",
            },
        ),
    ]
