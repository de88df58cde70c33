"""Buy-now fingerprints in the form that holds no more of the card than its last four digits
(shop.fingerprints.order_fingerprint), wherever a row holds what it is computed from:

- a buy-now's receipt (PlacedOrder with a fingerprint) from its name, email and card's last four
  digits, and the product and quantity of its one line in the order of record (the legacy API's,
  in the same database; its card's last four digits too where the receipt predates keeping them).
  A receipt whose order of record is not found (none here) loses its fingerprint, and is then
  claimed by the first body to ask, as a receipt kept from before fingerprints were;
- each buy-now try of a checkout in doubt (PendingCheckout.tries), from the body the try keeps;
- a refusal for a declined card (BuyNowRefusal) holds no body: its card-wide fingerprint moves to
  `fingerprint_before`, matched (and renewed) for a replay of its key until the hourly prune drops
  it a week after the refusal (shop.housekeeping); one older than that is dropped now. A refusal
  without a fingerprint answers its decline to every body: never an order, never a charge.

The release before matches a replay only against the card-wide form, so this runs once no process
of it serves (README, Upgrading), after 0019 made the schema the release needs.
Batches commit one by one (the migration is not atomic); one stopped midway is simply run again.
Going back puts the refusals' fingerprints back where the release before reads them and leaves
the rest in the new form: the card-wide one cannot be rebuilt, as no full card is kept."""


from datetime import timedelta

from django.db import migrations, models, transaction
from django.utils import timezone

from shop.fingerprints import order_fingerprint

BATCH = 2000
REFUSAL_FINGERPRINT_BEFORE_KEPT = timedelta(days=7)  # as shop.housekeeping


def _receipts(apps):
    placed_order = apps.get_model("shop", "PlacedOrder")
    legacy_order = apps.get_model("legacy_api", "Order")
    legacy_line = apps.get_model("legacy_api", "OrderLine")
    last = 0
    while True:
        rows = list(
            placed_order.objects.filter(pk__gt=last)
            .exclude(fingerprint="")
            .order_by("pk")
            .values_list("pk", "fingerprint", "legacy_id", "name", "email", "card_last4")[:BATCH]
        )
        if not rows:
            return
        last = rows[-1][0]
        ids = [row[2] for row in rows]
        last4s = dict(legacy_order.objects.filter(pk__in=ids).values_list("pk", "card_last4"))
        lines: dict[int, list] = {}
        for order_id, slug, quantity in legacy_line.objects.filter(order_id__in=ids).values_list(
            "order_id", "product_slug", "quantity"
        ):
            lines.setdefault(order_id, []).append((slug, quantity))
        renewed = []
        for pk, stored, legacy_id, name, email, last4 in rows:
            ordered = lines.get(legacy_id, [])
            fingerprint = ""
            if len(ordered) == 1 and (last4 or last4s.get(legacy_id)):
                (slug, quantity), card_last4 = ordered[0], last4 or last4s[legacy_id]
                fingerprint = order_fingerprint(
                    product_slug=slug, quantity=quantity, name=name, email=email, card_last4=card_last4
                )
            if stored != fingerprint:
                renewed.append(placed_order(pk=pk, fingerprint=fingerprint))
        with transaction.atomic():
            placed_order.objects.bulk_update(renewed, ["fingerprint"])


def _try_renewed(attempt):
    if not isinstance(attempt, dict) or not attempt.get("fingerprint"):
        return attempt  # a checkout's (it has none)
    (line,) = attempt["lines"]  # a buy-now orders one product
    fingerprint = order_fingerprint(
        product_slug=line["product"],
        quantity=line["quantity"],
        name=attempt["name"],
        email=attempt["email"],
        card_last4=attempt["card_last4"],
    )
    return {**attempt, "fingerprint": fingerprint}


def _pending_tries(apps):
    pending_checkout = apps.get_model("shop", "PendingCheckout")
    for pk in list(pending_checkout.objects.values_list("pk", flat=True)):
        with transaction.atomic():
            pending = pending_checkout.objects.select_for_update().filter(pk=pk).first()
            if pending is None:
                continue
            tries = [_try_renewed(attempt) for attempt in pending.tries]
            if tries != pending.tries:
                pending_checkout.objects.filter(pk=pk).update(tries=tries)


def _refusals(apps):
    refusal = apps.get_model("shop", "BuyNowRefusal")
    with transaction.atomic():
        old = timezone.now() - REFUSAL_FINGERPRINT_BEFORE_KEPT
        refusal.objects.filter(refused_at__lt=old).update(fingerprint="", fingerprint_before="")
        refusal.objects.exclude(fingerprint="").update(fingerprint_before=models.F("fingerprint"), fingerprint="")


def forwards(apps, schema_editor):
    _refusals(apps)
    _pending_tries(apps)
    _receipts(apps)


def backwards(apps, schema_editor):
    refusal = apps.get_model("shop", "BuyNowRefusal")
    refusal.objects.filter(fingerprint="").exclude(fingerprint_before="").update(
        fingerprint=models.F("fingerprint_before"), fingerprint_before=""
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0020_placed_order_placed_index"),
        ("legacy_api", "0004_callers_own_holds_and_orders"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
