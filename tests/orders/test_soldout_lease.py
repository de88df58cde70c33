"""Sold-out answers from a process's memory: once a sale has nothing left, the gate's script
grants the process a lease with the sale's known keys, and until it ends the process answers
a key outside them without Redis or PostgreSQL. While any lease runs no order is accepted,
so units that come back wait it out, and a key that had an order still gets its first answer."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import acceptance, gate, known_keys, sales, views
from orders.models import HotOrder, SaleAllocation
from orders.selectors import hot_product_get
from tests.orders.conftest import order_body, post_order
from tests.orders.sale_support import legacy_serve
from tests.orders.test_known_keys import sell_out

pytestmark = pytest.mark.django_db(transaction=True)

# Longer than any test takes between two requests, even on a loaded machine: a test that
# waits a lease out sets a short one of its own (WAITED_LEASE_MS).
LEASE_MS = 30_000
WAITED_LEASE_MS = 400


@pytest.fixture(autouse=True)
def redis_cache(settings):
    if gate.redis_client() is None:
        pytest.skip("the leases live in Redis: set REDIS_URL=redis://...")
    settings.ORDERS_SOLDOUT_LEASE_MS = LEASE_MS


class Calls:
    """The gate's script, counted: each call's verdict and how many parts its reply had."""

    def __init__(self, monkeypatch):
        self.replies: list[list] = []
        real = gate.redis_script

        def counted(client, source):
            script = real(client, source)

            def call(**kwargs):
                reply = script(**kwargs)
                self.replies.append(reply)
                return reply

            return call

        monkeypatch.setattr(gate, "redis_script", counted)

    @property
    def verdicts(self) -> list[bytes]:
        return [reply[0] for reply in self.replies]


@pytest.fixture
def calls(monkeypatch) -> Calls:
    return Calls(monkeypatch)


@pytest.fixture
def sale(settings, live_server, product) -> SaleAllocation:
    legacy_serve(settings, live_server)
    return sales.sale_open(product=product, units=2, per_order_limit=1)


def lease_in_redis(allocation: SaleAllocation) -> int:
    """Milliseconds left on the sale's lease in Redis (negative: none)."""
    return gate.redis_client().pttl(cache.make_key(gate.soldout_lease_key(allocation.pk)))


def test_a_lease_answers_fresh_keys_without_redis_or_the_database(client, sale, calls):
    sell_out(sale)
    hot_product_get(category="rods", product="muskie-casting-rod")
    assert post_order(client, order_body()).status_code == 409  # takes the lease
    assert calls.verdicts[-1] == b"sold_out_unseen" and len(calls.replies[-1]) == 4  # with the known keys
    assert lease_in_redis(sale) > 0
    before = len(calls.replies)
    with CaptureQueriesContext(connection) as queries:
        answers = [post_order(client, order_body()) for _ in range(20)]
    assert {(a.status_code, a.json()["error"], a.json()["remaining"]) for a in answers} == {(409, "sold_out", 0)}
    assert len(calls.replies) == before  # no script
    assert [q["sql"] for q in queries] == []


def test_a_key_that_had_an_order_gets_its_202_while_the_lease_runs(client, sale, calls):
    key, body = uuid.uuid4().hex, order_body()
    first = post_order(client, body, key=key)
    assert first.status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    assert post_order(client, order_body()).status_code == 409  # takes the lease
    assert gate._leases[sale.pk].until > time.monotonic()
    again = post_order(client, body, key=key)
    assert (again.status_code, again.json().get("number")) == (202, first.json()["number"]), again.json()
    assert calls.verdicts[-1] == b"sold_out"  # asked Redis, then the database


def test_under_a_lease_a_fresh_key_is_told_sold_out_without_its_address_or_the_gate(client, sale, calls, monkeypatch):
    key, body = uuid.uuid4().hex, order_body()
    assert post_order(client, body, key=key).status_code == 202
    sell_out(SaleAllocation.objects.get(pk=sale.pk))
    assert post_order(client, order_body()).status_code == 409  # takes the lease
    monkeypatch.setattr(views, "client_ip", lambda request: pytest.fail("the address was parsed"))
    monkeypatch.setattr(acceptance, "gate_check", lambda **kw: pytest.fail("the gate was asked"))
    answer = post_order(client, order_body())
    assert (answer.status_code, answer.json()) == (409, {"error": "sold_out", "detail": "Sold out.", "remaining": 0})
    assert answer["Content-Type"] == "application/json"
    # Bad input is still told what is wrong, naming the field, as on an open sale.
    bad = post_order(client, order_body(quantity=0))
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["quantity"])
    missing = post_order(client, order_body(), key=None)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["fields"]
    # A key that had an order is not among those answered so: it gets its 202 again.
    monkeypatch.undo()
    assert post_order(client, body, key=key).status_code == 202


def test_the_known_keys_are_sent_again_only_when_they_changed(client, sale, calls, settings):
    sell_out(sale)
    settings.ORDERS_SOLDOUT_LEASE_MS = 50
    post_order(client, order_body())
    first = gate._leases[sale.pk]
    time.sleep(0.06)  # the lease is over: the next answer asks for another
    post_order(client, order_body())
    assert [len(reply) for reply in calls.replies[-2:]] == [4, 3]  # the copy is kept
    assert gate._leases[sale.pk].members is first.members and gate._leases[sale.pk].until > first.until
    known_keys.known_keys_arm(allocation_id=sale.pk, product_id=sale.product_id)  # armed again: a new epoch
    time.sleep(0.06)
    post_order(client, order_body())
    assert len(calls.replies[-1]) == 4
    assert gate._leases[sale.pk].version != first.version


def test_units_that_come_back_are_sold_only_once_every_lease_is_over(client, sale, calls, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("ACCEPT_SQL is PostgreSQL's")
    settings.ORDERS_SOLDOUT_LEASE_MS = WAITED_LEASE_MS  # the order below waits it out
    sell_out(sale)
    assert post_order(client, order_body()).status_code == 409  # a lease, as another process would hold it
    # Two units come back (the merchant adds them; the sold-out figure is dropped on commit).
    SaleAllocation.objects.filter(pk=sale.pk).update(allocated=4)
    sales_figure = cache.make_key(gate.remaining_cache_key(sale.pk))
    gate.redis_client().delete(sales_figure)
    gate.soldout_leases_forget()  # this process is the other one, which holds no lease
    written_during_lease = []
    real_insert = acceptance._order_insert_reserving

    def insert(order, **kwargs):
        written_during_lease.append(lease_in_redis(sale) > 0)
        return real_insert(order, **kwargs)

    monkeypatch.setattr(acceptance, "_order_insert_reserving", insert)
    response = post_order(client, order_body())
    assert response.status_code == 202, response.json()
    assert calls.verdicts[-2:] == [b"leased", b"ok"]  # waited the lease out
    assert written_during_lease == [False]
    assert HotOrder.objects.count() == 3


def test_a_figure_that_lapsed_under_a_lease_is_read_again_from_the_database(client, sale, calls, monkeypatch):
    """The sold-out figure lives a few seconds: when it lapses while a lease runs, the buyer
    is answered from the database at once (nothing came back), not kept waiting the lease out."""
    sell_out(sale)
    assert post_order(client, order_body()).status_code == 409  # a lease
    gate.redis_client().delete(cache.make_key(gate.remaining_cache_key(sale.pk)))  # its TTL ran out
    gate.soldout_leases_forget()
    waits = []
    monkeypatch.setattr(gate, "time", SimpleNamespace(time=time.time, monotonic=time.monotonic, sleep=waits.append))
    response = post_order(client, order_body())
    assert (response.status_code, response.json()["remaining"]) == (409, 0)
    assert calls.verdicts[-1] == b"leased"
    assert waits == []  # answered at once, not kept waiting the lease out
    assert cache.get(gate.remaining_cache_key(sale.pk)) == 0  # the figure is back
    assert post_order(client, order_body()).status_code == 409
    assert calls.verdicts[-1] == b"sold_out_unseen"


def test_a_buyer_who_meets_the_lease_again_and_again_is_told_to_retry(client, sale, monkeypatch):
    sell_out(sale)
    SaleAllocation.objects.filter(pk=sale.pk).update(allocated=4)  # units came back
    cache.delete(gate.remaining_cache_key(sale.pk))
    monkeypatch.setattr(gate, "redis_script", lambda client, source: lambda **kwargs: [b"leased", 1])
    count = HotOrder.objects.count()
    response = post_order(client, order_body())
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"] == "unavailable"
    assert HotOrder.objects.count() == count


def test_no_lease_when_it_is_set_to_zero(client, sale, calls, settings):
    settings.ORDERS_SOLDOUT_LEASE_MS = 0
    sell_out(sale)
    for _ in range(3):
        assert post_order(client, order_body()).status_code == 409
    assert calls.verdicts[-3:] == [b"sold_out_unseen"] * 3
    assert lease_in_redis(sale) < 0 and sale.pk not in gate._leases


def test_no_lease_while_units_are_left(client, settings, live_server, product, calls):
    """One unit left, an order for two: sold out to that buyer, but another may buy the unit."""
    legacy_serve(settings, live_server)
    allocation = sales.sale_open(product=product, units=2, per_order_limit=2)
    assert post_order(client, order_body(quantity=1)).status_code == 202  # one unit left
    assert post_order(client, order_body(quantity=2)).status_code == 409  # the database's refusal
    assert post_order(client, order_body(quantity=2)).status_code == 409  # Redis's, with 1 left
    assert calls.verdicts[-1] == b"sold_out_unseen" and lease_in_redis(allocation) < 0
    assert post_order(client, order_body(quantity=1)).status_code == 202


def test_a_key_whose_card_the_monolith_declined_gets_its_402_while_the_lease_runs(
    client, settings, live_server, product, calls
):
    # Armed with the monolith's placed orders only, the known keys told that key "sold out"
    # from memory: not its first answer, which stands on either side of the edge.
    from tests.orders.conftest import DECLINED_CARD

    legacy_serve(settings, live_server)
    key, body = uuid.uuid4().hex, order_body(card=DECLINED_CARD)
    first = post_order(client, body, key=key)  # no sale yet: the monolith's buy-now declines it
    assert first.status_code == 402, first.content
    sale = sales.sale_open(product=product, units=2, per_order_limit=1)
    sell_out(sale)
    assert post_order(client, order_body()).status_code == 409  # takes the lease
    assert gate._leases[sale.pk].until > time.monotonic()

    again = post_order(client, body, key=key)

    assert (again.status_code, again.json()) == (402, first.json())
