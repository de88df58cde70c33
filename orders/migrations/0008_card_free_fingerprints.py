"""Hot orders' fingerprints recomputed in the form that holds no more of the card than its last
four digits (shop.fingerprints.order_fingerprint), from each order's own fields: its product,
quantity, buyer's name and email and card's last four digits, all of which it keeps. A replay of
a key accepted before is answered with its order as it was; the card-wide hashes are gone.

Batches commit one by one (the migration is not atomic), so the workers changing orders' stages
are never held up for long; one stopped midway is simply run again. Going back leaves the new
form: the card-wide one cannot be rebuilt, as no full card number is kept."""

from django.db import migrations, transaction

from shop.fingerprints import order_fingerprint

BATCH = 2000


def forwards(apps, schema_editor):
    hot_order = apps.get_model("orders", "HotOrder")
    last = 0
    while True:
        rows = list(
            hot_order.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list(
                "pk", "fingerprint", "product__slug", "quantity", "customer_name", "customer_email", "card_last4"
            )[:BATCH]
        )
        if not rows:
            return
        last = rows[-1][0]
        renewed = []
        for pk, stored, slug, quantity, name, email, last4 in rows:
            fingerprint = order_fingerprint(
                product_slug=slug, quantity=quantity, name=name, email=email, card_last4=last4
            )
            if stored != fingerprint:
                renewed.append(hot_order(pk=pk, fingerprint=fingerprint))
        with transaction.atomic():
            hot_order.objects.bulk_update(renewed, ["fingerprint"])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0007_email_and_legacy_number_indexes"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
