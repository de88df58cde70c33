"""The four origins every deployment starts with; the monolith is the default."""

from django.conf import settings
from django.db import migrations


def create_origins(apps, schema_editor):
    Origin = apps.get_model("edge", "Origin")
    region = settings.AWS_REGION
    defaults = [
        # The all-in-one server plays the monolith locally; edit for the real deployment.
        dict(
            name="monolith",
            kind="web",
            domain=settings.EDGE_MONOLITH_DOMAIN,
            protocol="http",
            port=settings.EDGE_MONOLITH_PORT,
            is_default=True,
        ),
        dict(name="hotpath", kind="api-gateway", domain=f"hotpath.execute-api.{region}.amazonaws.com"),
        dict(name="legacy-api", kind="api-gateway", domain=f"legacy-api.execute-api.{region}.amazonaws.com"),
        dict(name="minisite", kind="s3", domain=f"{settings.EDGE_MINISITE_BUCKET}.s3.{region}.amazonaws.com"),
    ]
    for values in defaults:
        name = values.pop("name")
        values.setdefault("protocol", "https")
        values.setdefault("port", 443)
        Origin.objects.get_or_create(name=name, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("edge", "0001_initial")]

    operations = [migrations.RunPython(create_origins, migrations.RunPython.noop)]
