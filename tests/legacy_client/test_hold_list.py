"""legacy_client.holds_list against the real API served over HTTP: the hot path's own holds as
typed Holds, open ones unless asked otherwise, narrowed by product; a bad filter or another
caller's token is refused, and no answer is LegacyUnavailable."""

from dataclasses import replace

import pytest

import legacy_client
from legacy_api import holds as legacy_holds
from legacy_api.models import Hold as LegacyHold
from legacy_client import Hold, LegacyRefused, LegacyUnavailable
from shop.models import Category, Product
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rods(settings, live_server, db) -> list[Product]:
    legacy_serve(settings, live_server)
    category = Category.objects.create(name="Rods", slug="rods")
    return [
        Product.objects.create(category=category, title="Rod", slug="rod", price_cents=4999, stock=10),
        Product.objects.create(category=category, title="Reel", slug="reel", price_cents=2999, stock=10),
    ]


def test_the_callers_open_holds_are_listed_oldest_first(rods):
    legacy_client.hold_create(reference="sale-a", product="rod", quantity=2)
    legacy_client.hold_create(reference="sale-b", product="reel", quantity=3)
    legacy_client.hold_create(reference="sale-c", product="rod", quantity=1)
    legacy_client.hold_release(reference="sale-c")
    # Another caller's hold, taken in-process: over HTTP the holds are the hot path's alone.
    legacy_holds.hold_create(reference="sale-z", product="rod", quantity=4, caller="storefront")

    listed = legacy_client.holds_list()
    assert [replace(hold, created_at=None) for hold in listed] == [
        Hold(reference="sale-a", product="rod", quantity=2, status="open"),
        Hold(reference="sale-b", product="reel", quantity=3, status="open"),
    ]
    # When each was taken, as an aware time: how old a hold is, whatever the two services' zones.
    taken = LegacyHold.objects.get(reference="sale-a", caller="hotpath").created_at
    assert listed[0].created_at == taken and listed[0].created_at.tzinfo is not None
    assert [h.reference for h in legacy_client.holds_list(status="released")] == ["sale-c"]
    assert [h.reference for h in legacy_client.holds_list(status=None, product="rod")] == ["sale-a", "sale-c"]
    with pytest.raises(LegacyRefused) as refused:
        legacy_client.holds_list(caller="storefront")
    assert refused.value.status == 403


def test_a_bad_filter_is_refused_naming_it(rods):
    with pytest.raises(LegacyRefused) as refused:
        legacy_client.holds_list(status="taken")

    assert refused.value.status == 400 and list(refused.value.data["fields"]) == ["status"]


def test_no_answer_is_legacy_unavailable(settings):
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # nothing listens on the discard port

    with pytest.raises(LegacyUnavailable) as unavailable:
        legacy_client.holds_list()

    assert unavailable.value.sent is False


@pytest.mark.parametrize(
    "body",
    [
        {"error": "unreadable", "body": "<html>Maintenance</html>"},  # a proxy's page
        {"reference": "sale-a", "product": "rod", "status": "open"},  # cut short
        {"product": "rod", "on_hand": "10", "held": None, "available": 8},
    ],
)
def test_a_2xx_that_does_not_carry_the_figures_is_no_answer(rods, monkeypatch, body):
    """Read as 0 before: an empty hold (which `sale reconcile` then repaired) and no stock
    (which `sale status` showed as the truth)."""
    from legacy_client import holds
    from legacy_client.transport import LegacyResponse

    legacy_client.hold_create(reference="sale-a", product="rod", quantity=2)
    monkeypatch.setattr(holds, "request", lambda *args, **kwargs: LegacyResponse(status=200, data=body))

    for read in (
        lambda: legacy_client.hold_get(reference="sale-a"),
        lambda: legacy_client.stock_get(product="rod"),
        lambda: legacy_client.hold_set(reference="sale-a", quantity=3),
    ):
        with pytest.raises(LegacyUnavailable) as unavailable:
            read()
        assert unavailable.value.sent is True
    monkeypatch.setattr(holds, "request", lambda *args, **kwargs: LegacyResponse(status=200, data={"results": [body]}))
    with pytest.raises(LegacyUnavailable):
        legacy_client.holds_list()
