"""How many task messages wait in the broker's queue, for the live view and the dashboard; and,
on Redis and the embedded broker, which orders' messages wait there, for the stalled-order sweep.

Each process remembers the figure for BROKER_DEPTH_MEMO_SECONDS, however many merchants
watch: each page reloads itself every few seconds, and RabbitMQ's figure costs a connection
of its own. A broker that does not answer is asked once (no retry) and not again for
BROKER_AWAY_MEMO_SECONDS, so that a page's refresh never waits on it twice in a row."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from django.conf import settings

from orders.outbox import ORDER_TASK

logger = logging.getLogger(__name__)

BROKER_DEPTH_MEMO_SECONDS = 2.0
BROKER_AWAY_MEMO_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 1.0

# On Redis each message is kombu's JSON, whose headers name the task and repeat its arguments
# (an order's message: its id). The script reads one page of the queue in the server and
# returns how many messages it read, then the ids of the orders whose messages are among them
# (the beat's own tasks, consumer runs and sweeps share the queue). A page at a time, so that
# a deep queue never holds Redis up for long: a page of a thousand takes a few milliseconds.
# Paged from the head, where messages are pushed: a push shifts what follows by one, so a
# message may be read twice, never missed; the workers take from the tail.
_ORDERS_WAITING_SCRIPT = """
local messages = redis.call('LRANGE', KEYS[1], ARGV[2], ARGV[3])
local found = {#messages}
for _, message in ipairs(messages) do
  if string.find(message, ARGV[1], 1, true) then
    local id = string.match(message, '"argsrepr": "%[(%d+)%]"')
    if id then found[#found + 1] = id end
  end
end
return found
"""
PAGE = 1000
ARGS_OF_ONE_ID = re.compile(r"\[(\d+)\]")

# Broker URL -> (monotonic time the figure is good until, the figure).
_memo: dict[str, tuple[float, int | None]] = {}


class BrokerAway(Exception):
    """The broker did not answer."""


def broker_queue_depth(*, fresh: bool = False) -> int | None:
    """Messages waiting in the broker's default queue when it is Redis or RabbitMQ; None
    elsewhere, and while the broker does not answer. `fresh`: asked now, whatever this process
    remembers (what the sweeps decide by)."""
    url = settings.CELERY_BROKER_URL
    now = time.monotonic()
    memo = _memo.get(url)
    if memo is not None and now < memo[0] and not fresh:
        return memo[1]
    try:
        depth, good_for = _depth(url), BROKER_DEPTH_MEMO_SECONDS
    except BrokerAway:
        depth, good_for = None, BROKER_AWAY_MEMO_SECONDS
    _memo[url] = (time.monotonic() + good_for, depth)
    return depth


def broker_depth_forget() -> None:
    _memo.clear()


def _depth(url: str) -> int | None:
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return _rabbitmq_queue_depth(url)
    if url.startswith(("redis://", "rediss://")):
        return _redis_queue_depth(url)
    return None


def _redis_queue_depth(url: str) -> int:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            return int(client.llen(settings.CELERY_TASK_DEFAULT_QUEUE))
        finally:
            client.close()
    except Exception as exc:  # a dashboard must not fail because the broker is away
        logger.warning("could not read the broker's queue length", exc_info=True)
        raise BrokerAway from exc


def _rabbitmq_queue_depth(url: str) -> int:
    from amqp.exceptions import NotFound
    from celery import current_app

    try:
        # One try: kombu otherwise connects again after 2 s, and the page waits for both.
        options = {"max_retries": 0}
        # The URL's own transport, not the app's: the embedded broker names one of its own.
        with current_app.connection_for_read(
            url,
            transport=url.partition("://")[0],
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            transport_options=options,
        ) as connection:
            try:
                # Passive: asks about the queue without creating it (a dashboard declares nothing).
                return connection.default_channel.queue_declare(
                    settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
                ).message_count
            except NotFound:  # no worker or publish has declared it yet: nothing waits
                return 0
    except Exception as exc:  # a dashboard must not fail because the broker is away
        logger.warning("could not read the broker's queue length", exc_info=True)
        raise BrokerAway from exc


def orders_waiting_in_broker() -> set[int] | None:
    """The ids of the orders whose message waits in the broker's queue, read now, when the
    broker is Redis or the embedded one; None elsewhere (RabbitMQ and SQS tell only how many
    messages wait, of every task) and while it does not answer. Messages a worker has taken
    and not yet acknowledged are not in the queue."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem"):
        return _files_orders_waiting()
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    ids: set[int] = set()
    try:
        client = redis.Redis.from_url(url, socket_timeout=CONNECT_TIMEOUT_SECONDS * 5)
        try:
            page = client.register_script(_ORDERS_WAITING_SCRIPT)
            marker, first = f'"task": "{ORDER_TASK}"', 0
            while True:
                read, *found = page(keys=[settings.CELERY_TASK_DEFAULT_QUEUE], args=[marker, first, first + PAGE - 1])
                ids.update(int(order_id) for order_id in found)
                if int(read) < PAGE:
                    return ids
                first += PAGE
        finally:
            client.close()
    except Exception:
        logger.warning("could not read the orders waiting in the broker's queue", exc_info=True)
        return None


def _files_orders_waiting() -> set[int]:
    """The embedded broker's: a file a message, named for its queue, holding the same JSON."""
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    suffix = f".{settings.CELERY_TASK_DEFAULT_QUEUE}.msg"
    ids = set()
    for path in folder.glob(f"*{suffix}"):
        try:
            headers = json.loads(path.read_bytes()).get("headers") or {}
        except (OSError, ValueError):  # taken by a worker meanwhile, or half written
            continue
        found = ARGS_OF_ONE_ID.fullmatch(str(headers.get("argsrepr", "")))
        if headers.get("task") == ORDER_TASK and found:
            ids.add(int(found.group(1)))
    return ids
