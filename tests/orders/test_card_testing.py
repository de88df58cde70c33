"""Card testing through the hot path: a stranger with a list of stolen cards sends them to the
sale's orders API one by one and reads which are good from each order's status. The cards the
order backend declined there count against the buyer's address and mailbox, in the counters the
checkout and the buy-now API keep (shop.decline_throttle), and past a limit the hot path refuses
the next order from there with 429 before anything is written or any card sent."""

from __future__ import annotations

import pytest

from legacy_api.models import PaymentAuthorisation
from orders import placement, sales
from orders.models import HotOrder
from shop.decline_throttle import DeclinesThrottled, decline_count, decline_try
from tests.orders.conftest import APPROVED_CARD, DECLINED_CARD, order_body, post_order
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limits(settings):
    settings.SHOP_DECLINES_PER_EMAIL, settings.SHOP_DECLINES_PER_IP = 2, 3


def refused_for_declines(response) -> bool:
    body = response.json()
    return (
        response.status_code == 429
        and int(response["Retry-After"]) > 0
        and body["error"] == "throttled"
        and "declined" in body["detail"]
    )


def test_cards_the_order_backend_declined_for_hot_orders_stop_the_next_card_from_that_mailbox(
    client, product, settings, live_server, limits, counting_clock_pinned
):
    legacy_serve(settings, live_server)
    sales.sale_open(product=product, units=10, per_order_limit=1)
    for key in ("k1", "k2"):
        accepted = post_order(client, order_body(email="carder@example.com", card=DECLINED_CARD), key=key)
        assert accepted.status_code == 202, accepted.content
        order = HotOrder.objects.get(idempotency_key=key)
        assert placement.order_send_to_legacy(order_id=order.pk) == "card_declined"
    tried = PaymentAuthorisation.objects.count()

    # The same mailbox, spelt otherwise, from another address, with a card that would go through.
    refused = post_order(client, order_body(email="Carder+3@Example.COM"), key="k3", REMOTE_ADDR="10.0.0.3")

    assert refused_for_declines(refused), refused.content
    assert HotOrder.objects.count() == 2  # nothing written
    assert PaymentAuthorisation.objects.count() == tried  # and no card sent
    # The same counters as the storefront's: its checkout and buy-now refuse that mailbox too.
    with pytest.raises(DeclinesThrottled), decline_try(address="10.0.0.4", email="carder@example.com"):
        pass
    # A key answered before keeps its first answer; another buyer is not held up.
    assert post_order(client, order_body(email="carder@example.com", card=DECLINED_CARD), key="k1").status_code == 202
    fine = post_order(client, order_body(email="ann@example.com", card=APPROVED_CARD), key="k4")
    assert fine.status_code == 202, fine.content


def test_an_address_with_too_many_cards_declined_is_refused_whatever_the_mailbox(
    client, allocation, settings, limits, throttle_cache
):
    for n in range(3):  # declined anywhere in the shop: the checkout, the buy-now API, the hot path
        decline_count(address="203.0.113.9", email=f"t{n}@example.com")

    refused = post_order(client, order_body(email="someone-new@example.com"), REMOTE_ADDR="203.0.113.9")

    assert refused_for_declines(refused), refused.content
    assert not HotOrder.objects.exists()
    assert post_order(client, order_body(), REMOTE_ADDR="203.0.113.10").status_code == 202
    # Below the limits nothing is refused: two declines for one mailbox are its limit, one is not.
    decline_count(address=None, email="typo@example.com")
    assert post_order(client, order_body(email="typo@example.com"), REMOTE_ADDR="198.51.100.1").status_code == 202
    decline_count(address=None, email="typo@example.com")
    refused = post_order(client, order_body(email="typo@example.com"), REMOTE_ADDR="198.51.100.2")
    assert refused_for_declines(refused), refused.content
