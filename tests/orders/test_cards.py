"""Card numbers at rest: sealed at acceptance, opened only by the worker, wiped when the order
is final, under keys that rotate; and, after a stampede through real servers, no table and no
Redis key (cache or broker) holds a buyer's card number."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import uuid

import pytest
import redis
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.db import connection

from orders import cards, dead_letters, placement
from orders.models import HotOrder, OrderStage
from orders.outbox import outbox_relay
from tests.conftest import PYTHON, ROOT, eventually
from tests.orders.conftest import (
    APPROVED_CARD,
    DECLINED_CARD,
    broker_depth,
    legacy_orders_count,
    order_accept_as_buyer,
    order_body,
    order_claimed,
    orders_final,
)
from tests.orders.test_concurrency import post_all_at_once


def test_a_sealed_card_opens_to_its_number_and_shows_none_of_its_digits(settings):
    sealed = cards.card_seal(APPROVED_CARD)
    assert APPROVED_CARD not in sealed
    assert cards.card_open(sealed) == APPROVED_CARD


def test_a_rotated_key_still_opens_cards_sealed_under_the_old_one(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_ENCRYPTION_KEY = old
    sealed_before = cards.card_seal(APPROVED_CARD)
    settings.CARD_ENCRYPTION_KEY = f"{new},{old}"
    assert cards.card_open(sealed_before) == APPROVED_CARD
    sealed_after = cards.card_seal(APPROVED_CARD)
    settings.CARD_ENCRYPTION_KEY = new  # the old key retired
    assert cards.card_open(sealed_after) == APPROVED_CARD
    with pytest.raises(cards.CardKeyNotHeld):
        cards.card_open(sealed_before)
    with pytest.raises(cards.CardWiped):
        cards.card_open("")


def test_production_refuses_to_start_without_a_card_encryption_key():
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LEGACY_API_TOKEN_STOREFRONT": secrets.token_urlsafe(32),
        "LEGACY_API_TOKEN_HOTPATH": secrets.token_urlsafe(32),
    }
    env.pop("CARD_ENCRYPTION_KEY", None)
    script = "import django; django.setup()"
    refused = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "CARD_ENCRYPTION_KEY" in refused.stderr
    legacy = {**env, "SHOP_DEPLOYMENT": "legacy"}  # never sees a card it must keep
    started = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=legacy, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    env["CARD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    started = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr


@pytest.mark.parametrize("one_statement", [True, False], ids=["one statement", "orm transaction"])
def test_acceptance_stores_the_card_sealed_never_in_the_clear(allocation, monkeypatch, one_statement):
    from orders import acceptance

    if one_statement and connection.vendor != "postgresql":
        pytest.skip("one statement needs PostgreSQL")
    monkeypatch.setattr(acceptance, "_accept_in_one_statement", lambda: one_statement)
    order = order_accept_as_buyer(card=APPROVED_CARD)
    stored = HotOrder.objects.get(pk=order.pk)
    assert APPROVED_CARD not in stored.card_sealed and stored.card_last4 == "4242"
    assert cards.card_open(stored.card_sealed) == APPROVED_CARD


def test_a_dead_letter_keeps_its_sealed_card_for_a_redrive_and_a_final_order_none(allocation):
    parked = order_accept_as_buyer()
    placement.order_dead_letter(order_id=parked.pk, error="legacy API answered 503")
    parked.refresh_from_db()
    assert cards.card_open(parked.card_sealed) == APPROVED_CARD
    dead_letters.order_redrive(order_id=parked.pk)
    order_claimed(parked.pk)
    placement.order_fail(order_id=parked.pk, stage=OrderStage.SOLD_OUT)
    parked.refresh_from_db()
    assert parked.card_sealed == ""


def card_wipe(order: HotOrder) -> None:
    HotOrder.objects.filter(pk=order.pk).update(card_sealed="")


def test_an_order_whose_card_was_wiped_fails_cleanly_without_calling_the_legacy_api(allocation, settings):
    """No process can open a card that is gone: nothing to send, the buyer must order again,
    and its units go back on sale."""
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # nothing listens: a call would raise
    order = order_accept_as_buyer(quantity=2)
    card_wipe(order)
    assert placement.order_send_to_legacy(order_id=order.pk) == "card_missing"
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.stage, order.card_sealed) == ("failed", "card_declined", "")
    assert "no longer held" in order.history.last().detail
    assert allocation.reserved == 0


def test_an_order_sent_before_whose_card_was_wiped_is_dead_lettered_not_failed(allocation, settings):
    """An earlier attempt may have placed it (its answer lost to a timeout): failing it would
    give back units a legacy order holds, so it is parked for the merchant, units reserved."""
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # nothing listens: a call would raise
    order = order_accept_as_buyer(quantity=2)
    order_claimed(order.pk)  # the first attempt, whose answer never came back
    card_wipe(order)

    assert placement.order_send_to_legacy(order_id=order.pk) == "dead_lettered"

    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.stage) == ("processing", "dead_lettered")
    assert f"look for reference {order.reference}" in order.dead_letters.get().error
    assert allocation.reserved == 2


def accept_during_a_key_rollout(settings, **body) -> HotOrder:
    """An order taken by a web process already given the new key (it seals with it), while the
    worker that takes it has not been restarted yet: it holds only the old one."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_ENCRYPTION_KEY = f"{new},{old}"
    order = order_accept_as_buyer(**body)
    settings.CARD_ENCRYPTION_KEY = old
    return order


def test_an_order_sealed_under_a_key_this_worker_does_not_hold_is_left_for_a_worker_that_does(
    allocation, settings, caplog
):
    """The buyer had a 202 and no card was tried: the order is neither declined nor wiped, its
    units stay held, and its claim ends so that a worker given the new key takes it at once."""
    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # nothing listens: a call would raise
    order = accept_during_a_key_rollout(settings, quantity=2)

    with pytest.raises(placement.CardKeyMissing):
        placement.order_send_to_legacy(order_id=order.pk, worker="worker-not-yet-rotated")

    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.reservation, order.claimed_by) == ("processing", "held", "")
    assert order.stage not in (OrderStage.CARD_DECLINED, OrderStage.DEAD_LETTERED)
    assert order.card_sealed and "does not hold" in order.last_error
    assert allocation.reserved == 2
    assert f"order {order.number}: this process lacks the card encryption key" in caplog.text
    assert placement.order_claim(order_id=order.pk, holder="worker-rotated") is not None


def test_an_order_no_worker_can_open_is_retried_then_dead_lettered_never_declined(allocation, settings):
    """A rollout longer than the retries (or a key retired too soon): the order is parked for a
    merchant, who is told which key is missing, with its card and units kept for a redrive."""
    from orders.tasks import order_process

    settings.LEGACY_API_URL = "http://127.0.0.1:9/legacy-api"  # nothing listens: a call would raise
    order = accept_during_a_key_rollout(settings, quantity=2)

    # Run eagerly, the retries follow at once; each takes the claim the one before let go of.
    result = order_process.apply(args=(order.pk,))

    assert result.result == "dead_lettered"
    order.refresh_from_db()
    allocation.refresh_from_db()
    assert (order.status, order.stage, order.reservation) == ("processing", "dead_lettered", "held")
    assert order.attempts == order_process.max_retries + 1
    assert order.card_sealed and allocation.reserved == 2
    error = order.dead_letters.get().error
    assert "sealed under a key this worker does not hold" in error and "CARD_ENCRYPTION_KEY" in error


# --- After a stampede through real servers -----------------------------------------------
def tables_holding(text: str) -> list[str]:
    """Every table of the database with a row whose text (any column, bytea decoded) holds `text`."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            # Names from the catalogue, quoted; the searched text is a parameter.
            cursor.execute(f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE %s', [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
            cursor.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s AND data_type = 'bytea'",
                [table],
            )
            for (column,) in cursor.fetchall():
                sql = f'SELECT count(*) FROM "{table}" WHERE encode("{column}", \'escape\') LIKE %s'  # noqa: S608
                cursor.execute(sql, [f"%{text}%"])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}")
    return found


def _texts(value: bytes) -> list[bytes]:
    """The value, and whatever base64 it carries (kombu's message bodies are base64 in JSON)."""
    texts = [value]
    try:
        document = json.loads(value)
    except ValueError:
        return texts
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) >= 16:
            with contextlib.suppress(ValueError):
                texts.append(base64.b64decode(item, validate=True))
    return texts


def redis_keys_holding(url: str, text: str) -> list[str]:
    client = redis.Redis.from_url(url)
    found = []
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = [key]
        if any(text.encode() in piece for value in [key, *values] for piece in _texts(value)):
            found.append(key.decode(errors="replace"))
    return found


def broker_messages() -> list[dict]:
    """The task messages waiting in the Redis broker's default queue, decoded, left in place."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    messages = []
    for raw in client.lrange(django_settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1):
        envelope = json.loads(raw)
        messages.append({"headers": envelope["headers"], "body": json.loads(base64.b64decode(envelope["body"]))})
    return messages


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_after_a_stampede_no_table_and_no_redis_key_holds_a_card_number(
    processes, process_env, allocation, legacy_api, worker_env
):
    if not django_settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("reads the broker's messages in Redis: set CELERY_BROKER_URL=redis://...")
    allocation.allocated, allocation.per_order_limit = 12, 1
    allocation.save()
    hotpath = processes.granian("config.wsgi_hotpath", {**process_env, "ORDERS_THROTTLE_PER_IP": "0"}, threads=8)
    buyers = [(uuid.uuid4().hex, order_body(card=APPROVED_CARD if i % 3 else DECLINED_CARD)) for i in range(40)]

    answers = post_all_at_once(hotpath, buyers)

    assert sum(status == 202 for status, _ in answers) == 12
    # Queued, not placed yet: the orders, their messages and the cache are all there.
    assert HotOrder.objects.filter(status="processing").count() == 12
    assert outbox_relay() == 12  # what a worker's relay does first
    assert broker_depth() == 12
    ids = sorted(HotOrder.objects.values_list("pk", flat=True))
    bodies = [message["body"] for message in broker_messages()]
    assert sorted(args for args, _kwargs, _embed in bodies) == [[pk] for pk in ids]  # the order id, nothing else
    assert all(kwargs == {} for _args, kwargs, _embed in bodies)
    # The searches find what is there: a product's slug, a word inside the messages' base64.
    assert "shop_product" in tables_holding("muskie-casting-rod")
    assert redis_keys_holding(django_settings.CELERY_BROKER_URL, "errbacks")
    for card in (APPROVED_CARD, DECLINED_CARD):
        assert tables_holding(card) == []
        assert redis_keys_holding(django_settings.CELERY_BROKER_URL, card) == []
        assert redis_keys_holding(django_settings.REDIS_URL, card) == []

    legacy_api.start()
    processes.celery_worker(worker_env, concurrency=2)
    eventually(orders_final(12), timeout=120, message="the worker did not place the orders")

    assert legacy_orders_count() == HotOrder.objects.filter(status="complete").count() >= 1
    assert HotOrder.objects.filter(stage="card_declined").exists()
    assert set(HotOrder.objects.values_list("card_sealed", flat=True)) == {""}
    for card in (APPROVED_CARD, DECLINED_CARD):
        assert tables_holding(card) == []
        assert redis_keys_holding(django_settings.CELERY_BROKER_URL, card) == []
        assert redis_keys_holding(django_settings.REDIS_URL, card) == []
