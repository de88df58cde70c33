from django.db import migrations, models
from django.db.models import Count


def crossing_events_drafted_once(apps, schema_editor):
    """Before the constraint: a replay of the log could draft a crossing's event again once its
    first purchase order was decided. Each event keeps one purchase order (its draft if one is
    still open, else its first); the others keep their rows, no longer named as that event's."""
    PurchaseOrder = apps.get_model("readmodels", "PurchaseOrder")
    repeated = (
        PurchaseOrder.objects.exclude(event_position__isnull=True)
        .values("event_position")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("event_position", flat=True)
    )
    for position in list(repeated):
        orders = PurchaseOrder.objects.filter(event_position=position)
        kept = orders.filter(status="draft").order_by("pk").first() or orders.order_by("pk").first()
        orders.exclude(pk=kept.pk).update(event_position=None)


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(crossing_events_drafted_once, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="purchaseorder",
            constraint=models.UniqueConstraint(
                condition=models.Q(("event_position__isnull", False)),
                fields=("event_position",),
                name="readmodels_one_draft_per_crossing_event",
            ),
        ),
    ]
