"""order_place: stock taken all or nothing, replays, domain errors, and row locks under contention."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from legacy_api.models import Order
from legacy_api.services import CardDeclined, InvalidOrder, LineRequest, OutOfStock, order_place
from shop.models import Product


def place(reference: str = "svc-1", lines=None, card_number: str = "4242424242424242"):
    return order_place(
        reference=reference,
        customer_name="Ada Angler",
        customer_email="ada@example.com",
        lines=lines or [LineRequest(product="muskie-casting-rod", quantity=1)],
        card_number=card_number,
    )


@pytest.mark.django_db
def test_order_place_records_prices_at_placement(muskie_rod):
    order, created = place()
    muskie_rod.price_cents = 19999
    muskie_rod.save()

    assert created
    order.refresh_from_db()
    line = order.lines.get()
    assert (line.unit_price_cents, order.total_cents) == (14999, 14999)
    assert order.status == Order.Status.PLACED


@pytest.mark.django_db
def test_order_place_twice_returns_the_first_order(muskie_rod):
    first, created = place()
    again, created_again = place()

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 9


@pytest.mark.django_db
def test_order_place_replay_wins_over_stock_that_ran_out_since(muskie_rod):
    first, _ = place(lines=[LineRequest(product="muskie-casting-rod", quantity=10)])

    again, created = place(lines=[LineRequest(product="muskie-casting-rod", quantity=10)])

    assert not created
    assert again.pk == first.pk


@pytest.mark.django_db
def test_order_place_raises_out_of_stock_and_takes_nothing(muskie_rod, tourney_rod):
    lines = [
        LineRequest(product="tourney-casting-rod", quantity=2),
        LineRequest(product="muskie-casting-rod", quantity=11),
    ]
    with pytest.raises(OutOfStock) as error:
        place(lines=lines)

    assert (error.value.product, error.value.line, error.value.available) == ("muskie-casting-rod", 1, 10)
    tourney_rod.refresh_from_db()
    assert tourney_rod.stock == 25
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_order_place_raises_card_declined(muskie_rod):
    with pytest.raises(CardDeclined):
        place(card_number="4000000000000002")
    muskie_rod.refresh_from_db()
    assert muskie_rod.stock == 10


@pytest.mark.django_db
def test_order_place_names_every_line_it_cannot_sell(muskie_rod, tourney_rod):
    tourney_rod.is_active = False
    tourney_rod.save()
    lines = [
        LineRequest(product="tourney-casting-rod", quantity=1),
        LineRequest(product="no-such-rod", quantity=1),
        LineRequest(product="muskie-casting-rod", quantity=1),
    ]
    with pytest.raises(InvalidOrder) as error:
        place(lines=lines)

    assert set(error.value.fields) == {"lines.0.product", "lines.1.product"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_orders_naming_the_same_products_in_opposite_orders_never_deadlock(muskie_rod, tourney_rod):
    muskie_rod.stock = tourney_rod.stock = 100
    muskie_rod.save()
    tourney_rod.save()
    forwards = [
        LineRequest(product="muskie-casting-rod", quantity=1),
        LineRequest(product="tourney-casting-rod", quantity=1),
    ]
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    outcomes: list[object] = []

    def buyer(index: int) -> None:
        try:
            barrier.wait()
            order, _ = place(reference=f"cross-{index}", lines=forwards if index % 2 else forwards[::-1])
            outcomes.append(order.pk)
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert Product.objects.get(pk=muskie_rod.pk).stock == 100 - threads_count
    assert Product.objects.get(pk=tourney_rod.pk).stock == 100 - threads_count
    assert Order.objects.count() == threads_count
