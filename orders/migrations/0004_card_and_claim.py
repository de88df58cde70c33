"""Card numbers sealed instead of stored in the clear, and the workers' claim on an order.

Orders still waiting to be placed keep their card: it is sealed on the way (the keys of the
running settings), then the plain column is dropped."""

from django.db import migrations, models


def card_numbers_seal(apps, schema_editor):
    from orders.cards import card_seal

    HotOrder = apps.get_model("orders", "HotOrder")
    for order in HotOrder.objects.exclude(card_number="").only("pk", "card_number").iterator():
        HotOrder.objects.filter(pk=order.pk).update(card_sealed=card_seal(order.card_number), card_number="")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_sale_hold"),
    ]

    operations = [
        migrations.AddField(
            model_name="hotorder",
            name="card_sealed",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(card_numbers_seal, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name="hotorder",
            name="card_number",
        ),
        migrations.AddField(
            model_name="hotorder",
            name="claimed_by",
            field=models.CharField(blank=True, editable=False, max_length=100),
        ),
        migrations.AddField(
            model_name="hotorder",
            name="claimed_until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
