"""Orders' fingerprints recomputed in the form that holds no more of the card than its last four
digits (legacy_api.references.order_fingerprint_of), from each order's own fields: its customer's
name and email, its lines as they were asked for (product and quantity) and its card's last four
digits, all of which it keeps. The same reference with the same body is still its order, and
another body still ReferenceReused; the card-wide hashes are gone. A pending order (its lines
not written yet) is left to its request, which renews it when it compares the body
(references.body_check); so is one kept from before fingerprints were (none).

Batches commit one by one (the migration is not atomic); one stopped midway is simply run again.
Going back leaves the new form: the card-wide one cannot be rebuilt, as no full card is kept."""

from django.db import migrations, transaction

from legacy_api.references import order_fingerprint_of

BATCH = 2000


def forwards(apps, schema_editor):
    order = apps.get_model("legacy_api", "Order")
    order_line = apps.get_model("legacy_api", "OrderLine")
    last = 0
    while True:
        rows = list(
            order.objects.filter(pk__gt=last)
            .filter(status="placed")
            .exclude(fingerprint="")
            .order_by("pk")
            .values_list("pk", "fingerprint", "customer_name", "customer_email", "card_last4")[:BATCH]
        )
        if not rows:
            return
        last = rows[-1][0]
        lines: dict[int, list] = {}
        asked = order_line.objects.filter(order_id__in=[row[0] for row in rows]).order_by("pk")
        for order_id, slug, quantity in asked.values_list("order_id", "product_slug", "quantity"):
            lines.setdefault(order_id, []).append([slug, quantity])
        renewed = []
        for pk, stored, name, email, last4 in rows:
            if pk not in lines:
                continue
            fingerprint = order_fingerprint_of(
                customer_name=name, customer_email=email, lines=lines[pk], card_last4=last4
            )
            if stored != fingerprint:
                renewed.append(order(pk=pk, fingerprint=fingerprint))
        with transaction.atomic():
            order.objects.bulk_update(renewed, ["fingerprint"])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("legacy_api", "0004_callers_own_holds_and_orders"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
