"""Sold-out answers from Redis alone: an open sale's known keys let the gate tell a key that
never had an order, so the stampede's sold-out answers do not touch PostgreSQL; every key that
did have an order (here, or at the monolith) still gets its first answer."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis.exceptions import RedisError

from legacy_client.references import reference_for_key
from orders import gate, known_keys, sales
from orders.inputs import order_input_parse
from orders.models import SaleAllocation
from orders.selectors import hot_product_get, product_memo_forget
from orders.services import SoldOut
from shop.models import PlacedOrder
from tests.orders.conftest import order_accept_as_buyer, order_body, post_order
from tests.orders.sale_support import legacy_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def redis_cache():
    if gate.redis_client() is None:
        pytest.skip("the known keys live in Redis: set REDIS_URL=redis://...")


@pytest.fixture
def sale(settings, live_server, product) -> SaleAllocation:
    legacy_serve(settings, live_server)
    return sales.sale_open(product=product, units=2, per_order_limit=1)


def sell_out(allocation: SaleAllocation) -> list:
    """Orders until the sale refuses: that refusal leaves the sold-out figure in Redis."""
    orders = []
    for _ in range(allocation.allocated + 1):
        try:
            orders.append(order_accept_as_buyer(quantity=1))
        except SoldOut:
            return orders
    raise AssertionError("the sale did not sell out")


def placed_by_monolith(key: str, body: dict, *, number: str) -> PlacedOrder:
    """The monolith's receipt of the order it placed for `key` while the route was off."""
    fingerprint = order_input_parse(json.dumps(body).encode()).fingerprint(product_slug="muskie-casting-rod")
    return PlacedOrder.objects.create(
        number=number,
        legacy_id=int(number[1:]),
        reference=reference_for_key(key),
        fingerprint=fingerprint,
        email=body["customer"]["email"],
        name=body["customer"]["name"],
        total_cents=100,
        processing_ms=1,
    )


def test_a_fresh_key_on_a_sold_out_sale_is_answered_without_the_database(client, sale):
    sell_out(sale)
    hot_product_get(category="rods", product="muskie-casting-rod")  # the product, as a warm process has it
    with CaptureQueriesContext(connection) as queries:
        response = post_order(client, order_body(quantity=1))
    assert (response.status_code, response.json()["error"]) == (409, "sold_out")
    assert [q["sql"] for q in queries] == []


def test_a_key_that_was_ordered_still_gets_its_202_once_sold_out(client, sale):
    key, body = uuid.uuid4().hex, order_body(quantity=1)
    first = post_order(client, body, key=key)
    assert first.status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    again = post_order(client, body, key=key)
    assert (again.status_code, again.json().get("number")) == (202, first.json()["number"]), again.json()


def test_keys_ordered_before_the_sale_opened_are_known(settings, live_server, product):
    """A key the monolith placed (route off) and a hot order's key from the product's last
    sale, within the window, are armed with the sale: their replays go to the database."""
    legacy_serve(settings, live_server)
    monolith_key = uuid.uuid4().hex
    placed_by_monolith(monolith_key, order_body(quantity=1), number="L09999999")
    allocation = sales.sale_open(product=product, units=1, per_order_limit=1)
    ordered = sell_out(allocation)
    sales.sale_close(allocation=allocation)
    SaleAllocation.objects.filter(pk=allocation.pk).update(reserved=0)  # its orders settled
    allocation = sales.sale_open(product=product, units=1, per_order_limit=1)
    product_memo_forget()
    sell_out(allocation)
    members = {
        m.decode() for m in gate.redis_client().smembers(cache.make_key(known_keys.known_keys_key(allocation.pk)))
    }
    assert known_keys.known_key_member(monolith_key) in members
    assert known_keys.known_key_member(ordered[0].idempotency_key) in members
    assert known_keys.KNOWN_KEYS_ARMED in members


def test_a_monolith_order_placed_while_the_sale_is_open_gets_its_answer_once_sold_out(client, sale):
    """The monolith still places orders while a sale is open (before its window starts, or
    finishing one it had under way): each key is added to the open sales' known keys."""
    key, body = uuid.uuid4().hex, order_body(quantity=1)
    sell_out(sale)
    placed_by_monolith(key, body, number="L09999998")
    assert known_keys.known_key_member(key).encode() in gate.redis_client().smembers(
        cache.make_key(known_keys.known_keys_key(sale.pk))
    )
    response = post_order(client, body, key=key)
    assert (response.status_code, response.json().get("number")) == (201, "L09999998")  # never sold out


def test_a_monolith_key_is_known_before_its_receipt_is_committed(sale):
    """A process that dies between the receipt's commit and the key's add would leave the key
    unknown for good: it is added before the commit too."""
    key = uuid.uuid4().hex
    name = cache.make_key(known_keys.known_keys_key(sale.pk))
    with transaction.atomic():
        placed_by_monolith(key, order_body(quantity=1), number="L09999996")
        assert gate.redis_client().sismember(name, known_keys.known_key_member(key))


def test_a_key_the_monolith_placed_before_a_scheduled_sale_started_keeps_its_answer(settings, live_server, product):
    """Opened with a start a moment away: until it starts the monolith's own buy-now sells the
    product's open stock; once the sale sells out, the buyer's retry still gets that order."""
    legacy_serve(settings, live_server)  # all-in-one: the monolith's buy-now until the start
    starts = timezone.now() + timedelta(seconds=2)
    allocation = sales.sale_open(product=product, units=2, per_order_limit=1, starts_at=starts)
    key, body = uuid.uuid4().hex, order_body(quantity=1)
    first = post_order(Client(), body, key=key)
    assert first.status_code == 201, first.content
    time.sleep(max(0.0, (starts - timezone.now()).total_seconds()) + 0.2)
    product_memo_forget()
    sell_out(SaleAllocation.objects.get(pk=allocation.pk))
    again = post_order(Client(), body, key=key)
    assert (again.status_code, again.json().get("number")) == (201, first.json()["number"]), again.json()


def test_a_receipt_the_arming_read_missed_is_added_once_the_opening_commits(
    settings, live_server, product, monkeypatch
):
    """A monolith receipt committed while the sale's opening armed its keys (after the arming
    read the database, before the sale was visible as open) is found once the opening commits."""
    legacy_serve(settings, live_server)
    key = uuid.uuid4().hex
    placed_by_monolith(key, order_body(quantity=1), number="L09999997")  # no sale open yet
    monkeypatch.setattr(known_keys, "keys_recently_ordered", lambda product_id: [])  # the read missed it
    allocation = sales.sale_open(product=product, units=2, per_order_limit=1)
    members = gate.redis_client().smembers(cache.make_key(known_keys.known_keys_key(allocation.pk)))
    assert known_keys.known_key_member(key).encode() in members


def test_a_set_that_lost_its_mark_sends_sold_out_answers_to_the_database(client, sale):
    key, body = uuid.uuid4().hex, order_body(quantity=1)
    assert post_order(client, body, key=key).status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    gate.redis_client().delete(cache.make_key(known_keys.known_keys_key(sale.pk)))  # a Redis restart
    hot_product_get(category="rods", product="muskie-casting-rod")
    with CaptureQueriesContext(connection) as queries:
        assert post_order(client, order_body(quantity=1)).status_code == 409
    assert queries  # looked the key up
    assert post_order(client, body, key=key).status_code == 202  # and replays still work


def test_a_redis_restarted_from_its_snapshot_sends_sold_out_answers_to_the_database(
    settings, live_server, product, tmp_path
):
    """Redis crashed and started again from a snapshot taken after the sale opened: the set
    is still armed, without the keys added since. Armed on another run of the server, it is
    not trusted: the accepted buyer's retry still gets its 202."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    from bench.services import PrivateRedis

    redis = PrivateRedis(tmp_path / "redis")  # its snapshot is read again when it starts
    redis.start()
    try:
        settings.CACHES = {"default": {"BACKEND": "config.cache.PooledRedisCache", "LOCATION": f"{redis.url}/0"}}
        legacy_serve(settings, live_server)
        allocation = sales.sale_open(product=product, units=2, per_order_limit=1)
        gate.redis_client().save()  # the last snapshot before the crash
        key, body = uuid.uuid4().hex, order_body(quantity=1)
        first = post_order(Client(), body, key=key)
        assert first.status_code == 202
        with contextlib.suppress(RedisError):
            gate.redis_client().shutdown(nosave=True)  # a crash: what came after the snapshot is lost
        redis.process.wait(10)
        redis.start()
        name = cache.make_key(known_keys.known_keys_key(allocation.pk))
        assert gate.redis_client().sismember(name, known_keys.KNOWN_KEYS_ARMED)  # the snapshot's
        assert not gate.redis_client().sismember(name, known_keys.known_key_member(key))
        sell_out(SaleAllocation.objects.get(pk=allocation.pk))
        again = post_order(Client(), body, key=key)
        assert (again.status_code, again.json().get("number")) == (202, first.json()["number"]), again.json()
        assert not gate.redis_client().sismember(name, known_keys.KNOWN_KEYS_ARMED)  # no longer trusted
    finally:
        redis.stop()


def test_closing_the_sale_drops_its_known_keys(sale):
    name = cache.make_key(known_keys.known_keys_key(sale.pk))
    assert gate.redis_client().exists(name)
    sales.sale_close(allocation=sale)
    assert not gate.redis_client().exists(name)
