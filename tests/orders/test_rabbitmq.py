"""RabbitMQ as the broker (CELERY_BROKER_URL=amqp://), in a vhost of the test's own on the
RabbitMQ at 127.0.0.1:5672: the relay deletes an outbox row only once RabbitMQ has confirmed
its message, the dashboard reads the queue's depth there, and a worker killed mid-order has
its message delivered again and the order placed once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from orders.models import HotOrder, OutboxMessage
from tests.conftest import PYTHON, ROOT, eventually, settings_of_fresh_process
from tests.orders.conftest import legacy_orders_count, legacy_references, order_accept_as_buyer, orders_final

RABBITMQ = ("127.0.0.1", 5672)
RELAY = "import django; django.setup(); from orders.outbox import outbox_relay; print('published', outbox_relay())"


def dashboard_queue_depth(env: dict[str, str]) -> str:
    """The broker's queue length as the dashboard of a process with this environment reads it."""
    script = "import django; django.setup(); from orders.broker_depth import broker_queue_depth; "
    script += "print(broker_queue_depth())"
    done = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Vhost:
    name: str
    url: str

    def ctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", *args, "-p", self.name], check=True, capture_output=True, timeout=60)

    def messages(self) -> list:
        """Every message waiting in the orders' queue, taken from it."""
        from kombu import Connection

        taken = []
        with Connection(self.url) as connection:
            channel = connection.default_channel
            while (raw := channel.basic_get("celery", no_ack=True)) is not None:
                taken.append(channel.message_to_python(raw))
        return taken

    def queue_durable(self) -> bool:
        listed = subprocess.run(
            ["rabbitmqctl", "list_queues", "-p", self.name, "--no-table-headers", "-q", "name", "durable"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        return dict(zip(listed[::2], listed[1::2], strict=True))["celery"] == "true"


@pytest.fixture
def rabbitmq() -> Iterator[Vhost]:
    """A vhost of this test's own, deleted after it, so that nothing else on the broker is touched."""
    try:
        socket.create_connection(RABBITMQ, timeout=2).close()
    except OSError as exc:
        pytest.skip(f"needs RabbitMQ at {RABBITMQ[0]}:{RABBITMQ[1]} (guest/guest): {exc}")
    name = f"shop-test-{uuid.uuid4().hex[:12]}"
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True, timeout=60)
    vhost = Vhost(name, f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{name}")
    try:
        vhost.ctl("set_permissions", "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True, timeout=60)


class MutedRabbitMQ:
    """A loopback proxy to RabbitMQ that passes everything on, but stops passing RabbitMQ's
    answers back once its client has published (basic.publish: class 60, method 40): a broker
    that hung mid-session, as a paused server or a failover's old address does."""

    PUBLISH = b"\x00\x3c\x00\x28"

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client = self.server.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(RABBITMQ)
            muted = threading.Event()
            threading.Thread(target=self._pass, args=(client, upstream, muted, True), daemon=True).start()
            threading.Thread(target=self._pass, args=(upstream, client, muted, False), daemon=True).start()

    def _pass(self, source: socket.socket, target: socket.socket, muted: threading.Event, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self.PUBLISH in data:
                    muted.set()
                if from_client or not muted.is_set():
                    target.sendall(data)
        except OSError:
            pass


def test_rabbitmq_publishes_confirmed_and_gives_up_on_a_silent_broker():
    options = settings_of_fresh_process(
        "settings.CELERY_BROKER_TRANSPORT_OPTIONS", CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/shop"
    )
    assert options == {"confirm_publish": True, "read_timeout": 5.0, "write_timeout": 5.0}


def test_a_broker_nobody_set_up_is_refused_at_start():
    done = subprocess.run(
        [PYTHON, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": "sqla+sqlite:///b.db"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: CELERY_BROKER_URL must be filesystem://, redis://" in done.stderr, done.stderr


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_relay_keeps_the_orders_rabbitmq_refused_and_sends_them_later(process_env, allocation, rabbitmq):
    """A queue at its length limit refuses what comes next (overflow reject-publish); an order's
    row stays in the outbox until RabbitMQ has taken its message. Unconfirmed, the relay took
    the refused messages for sent and deleted their rows: 3 of 5 orders in neither place."""
    orders = [order_accept_as_buyer() for _ in range(5)]
    rabbitmq.ctl("set_policy", "full", "^celery$", '{"max-length": 2, "overflow": "reject-publish"}')
    env = {**process_env, "CELERY_BROKER_URL": rabbitmq.url}

    done = subprocess.run([PYTHON, "-c", RELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    queued = {message.decode()[0][0] for message in rabbitmq.messages()}
    kept = set(OutboxMessage.objects.values_list("order_id", flat=True))
    assert len(queued) == 2
    assert queued | kept == {order.pk for order in orders}, "an order is neither in RabbitMQ nor in the outbox"

    rabbitmq.ctl("clear_policy", "full")
    done = subprocess.run([PYTHON, "-c", RELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not OutboxMessage.objects.exists()
    messages = rabbitmq.messages()
    assert {message.decode()[0][0] for message in messages} == kept
    # What RabbitMQ keeps across its own restart: a durable queue, persistent messages.
    assert rabbitmq.queue_durable()
    assert {message.properties["delivery_mode"] for message in messages} == {2}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_order_through_rabbitmq_places_every_order_once(
    processes, product, allocation, legacy_api, legacy_env, worker_env, rabbitmq
):
    # About a second per order at the legacy API, so the kill lands while orders are there.
    legacy_api.env = {**legacy_env, "LEGACY_ARGON2_TIME_COST": "6", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    legacy_api.start()
    orders = [order_accept_as_buyer() for _ in range(4)]
    env = {
        **worker_env,
        "CELERY_BROKER_URL": rabbitmq.url,
        # The permits and claims the killed worker held end soon: a permit lasts the call's
        # timeout and 7 s (10 s), a claim the permit wait as well (11 s). The timeout is still
        # many times a call here (under a second).
        "LEGACY_API_TIMEOUT": "3",
        "ORDERS_SLOT_WAIT_SECONDS": "1",
    }
    done = subprocess.run([PYTHON, "-c", RELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.stdout.strip().splitlines()[-1] == "published 4", done.stderr[-3000:]
    # The merchant's dashboard reads the queue in RabbitMQ (it said "—" there).
    assert dashboard_queue_depth(env) == "4"

    first = processes.celery_worker(env, concurrency=2, name="worker-1")
    eventually(
        lambda: HotOrder.objects.filter(stage="validating").exists(),
        timeout=60,
        interval=0.05,
        message="the worker never took an order from RabbitMQ",
    )
    processes.stop(first, sig=signal.SIGKILL)  # the whole group at once, as a crash would
    assert HotOrder.objects.filter(status="processing").exists(), "the kill came after every order was done"

    # RabbitMQ gives the killed worker's unacknowledged messages back as its connection drops.
    processes.celery_worker(env, concurrency=2, name="worker-2")
    eventually(orders_final(4), timeout=150, message="the orders of the killed worker were not completed")
    assert set(HotOrder.objects.values_list("status", flat=True)) == {"complete"}
    assert legacy_orders_count() == 4
    assert sorted(legacy_references()) == sorted(order.reference for order in orders)
    allocation.refresh_from_db()
    assert (allocation.reserved, allocation.sold) == (0, 4)
    assert dashboard_queue_depth(env) == "0"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_relay_gives_up_on_a_rabbitmq_that_stops_answering_and_keeps_the_order(process_env, allocation, rabbitmq):
    """The publish reaches RabbitMQ, its confirm never comes back: the relay gives up after the
    broker's timeout (and Celery's three retries) and keeps the row, to publish it again."""
    order = order_accept_as_buyer()
    muted = MutedRabbitMQ()
    env = {
        **process_env,
        "CELERY_BROKER_URL": rabbitmq.url.replace(f":{RABBITMQ[1]}/", f":{muted.port}/"),
        "BROKER_TIMEOUT_SECONDS": "2",
    }
    started = time.monotonic()
    done = subprocess.run([PYTHON, "-c", RELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "published 0"
    assert time.monotonic() - started < 60
    row = OutboxMessage.objects.get(order=order)
    assert row.publish_attempts == 1 and "Timeout" in row.last_error, row.last_error
