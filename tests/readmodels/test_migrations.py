"""Purchase orders drafted twice for one crossing event, before the database held it to one (a
replay of the log to the reorders consumer could), migrate: each event keeps one."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from readmodels.models import PurchaseOrder
from shop.models import Category, Product
from tests.conftest import migrate_to

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

BEFORE = [("readmodels", "0001_initial")]
AFTER = [("readmodels", "0002_one_purchase_order_per_event")]


def test_an_event_drafted_twice_keeps_one_purchase_order_and_the_constraint_is_made():
    rod = Product.objects.create(
        category=Category.objects.create(name="Rods", slug="rods"),
        title="Tourney Casting Rod",
        slug="tourney-casting-rod",
        price_cents=9999,
        stock=9,
    )
    old = migrate_to(BEFORE).loader.project_state(BEFORE).apps.get_model("readmodels", "PurchaseOrder")
    first = old.objects.create(reference="PO-1", product_id=rod.pk, quantity=11, status="cancelled", event_position=42)
    again = old.objects.create(reference="PO-2", product_id=rod.pk, quantity=11, status="draft", event_position=42)
    other = old.objects.create(reference="PO-3", product_id=rod.pk, quantity=5, status="received", event_position=7)

    migrate_to(AFTER)

    positions = dict(PurchaseOrder.objects.values_list("reference", "event_position"))
    # The open draft keeps the event; the decided one stays, no longer named as its.
    assert positions == {first.reference: None, again.reference: 42, other.reference: 7}
    with pytest.raises(IntegrityError, match="readmodels_one_draft_per_crossing_event"):
        PurchaseOrder.objects.create(reference="PO-4", product=rod, quantity=1, status="cancelled", event_position=7)
