"""One trace per order, across real processes: the hot path and the legacy API under gunicorn,
a Celery worker, PostgreSQL and Redis. An order sent with an edge's X-Amzn-Trace-Id makes
one trace with that root, holding every hop; a small sale's service map counts its orders;
a worker killed mid-task leaves a retry that joins the same trace."""

from __future__ import annotations

import io
import os
import signal
import time
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape

import procs
from edge.lambda_edge import trace_header_mint
from events.models import Checkpoint, Event
from orders.models import HotOrder
from tests.conftest import BIN, eventually
from tests.orders.conftest import ORDERS_URL, http_json, legacy_orders_count, order_body, orders_final
from tracing import selectors
from tracing.admin import trace_url
from tracing.ids import otel_from_any
from tracing.models import Span

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EDGE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACE_ID = "5759e988bd862e3fe1be46a994272793"
# Spans written soon after they end, so the test need not wait for the default batch delay;
# new traces (a periodic task) are not sampled, so the store holds the orders' traces only.
TRACING = {"TRACING_EXPORT_DELAY_MS": "200", "TRACING_SAMPLE_RATE": "0"}


def shop(
    processes, legacy_api, worker_env, *, legacy_env=None, concurrency: int = 1, tracing: dict | None = None
) -> tuple[str, object]:
    """The legacy API, the hot path and a worker, all traced; returns the hot path's URL and the worker."""
    tracing = tracing or TRACING
    legacy_api.env = {**(legacy_env or legacy_api.env), **tracing}
    legacy_api.start()
    env = {**worker_env, **tracing}
    hotpath = processes.granian("config.wsgi_hotpath", env, name="hotpath")
    worker = processes.celery_worker(env, concurrency=concurrency)
    return hotpath, worker


def buy(hotpath: str, trace_header: str) -> dict:
    headers = {"Idempotency-Key": uuid.uuid4().hex, "X-Amzn-Trace-Id": trace_header}
    status, body, _ = http_json("POST", hotpath + ORDERS_URL, order_body(), headers=headers)
    assert status == 202, body
    return body


def spans_of(trace_id: str, **filters) -> list[Span]:
    return list(Span.objects.filter(trace_id=trace_id, **filters))


def children(span: Span, **filters) -> list[Span]:
    return list(Span.objects.filter(trace_id=span.trace_id, parent_id=span.span_id, **filters))


def legacy_order_pending(reference: str) -> bool:
    from django.apps import apps

    return apps.get_model("legacy_api", "Order").objects.filter(reference=reference, status="pending").exists()


def every_hop_stored(trace_id: str, *, publish: bool = True) -> bool:
    kinds = {(s.service, s.kind) for s in spans_of(trace_id)}
    # The publish is the outbox relay's, in a worker's process, under the hot path's request.
    wanted = {("hotpath", "server"), ("worker", "consumer"), ("legacy-api", "server")}
    if publish:
        wanted.add(("worker", "producer"))
    if not wanted <= kinds:
        return False
    legacy_servers = spans_of(trace_id, service="legacy-api", kind="server")
    return any(children(s, peer="postgresql") for s in legacy_servers)


def test_an_order_sent_with_an_edge_trace_header_is_one_trace_with_that_root_and_every_hop(
    processes, allocation, legacy_api, worker_env, viewer
):
    hotpath, _worker = shop(processes, legacy_api, worker_env)

    body = buy(hotpath, EDGE_HEADER)
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    eventually(lambda: every_hop_stored(TRACE_ID), timeout=30, message="the trace's spans were not all stored")

    # The hot path's server span continues the edge's trace, under the edge's Parent.
    (server,) = spans_of(TRACE_ID, service="hotpath", kind="server")
    assert (server.parent_id, server.parent_remote) == ("53995c3f42cd8ad8", True)
    assert server.path == ORDERS_URL and server.attributes.get("shop.order.number") == body["number"]
    assert {s.peer for s in children(server, kind="client")} >= {"postgresql", "redis"}
    # The publish (by the outbox's relay, in a worker's process) under the request; the
    # worker's task under the publish; the legacy API's request under the worker's HTTP
    # call, with its own SQL.
    (publish,) = spans_of(TRACE_ID, kind="producer")
    assert publish.parent_id == server.span_id and publish.parent_remote and "order_process" in publish.name
    (task,) = spans_of(TRACE_ID, kind="consumer")
    assert task.parent_id == publish.span_id and task.service == "worker" and not task.error
    (legacy,) = spans_of(TRACE_ID, service="legacy-api", kind="server")
    call = Span.objects.get(trace_id=TRACE_ID, span_id=legacy.parent_id)
    assert (call.service, call.kind) == ("worker", "client")
    assert children(legacy, peer="postgresql")
    # Nothing of this order went to another trace.
    assert set(Span.objects.values_list("trace_id", flat=True)) == {TRACE_ID}
    # The log's events of the order carry the trace id (EventBridge drops its own header).
    traces = set(Event.objects.filter(data__number=body["number"]).values_list("trace_id", flat=True))
    assert traces == {"1-5759e988-bd862e3fe1be46a994272793"}

    out = io.StringIO()
    call_command("traces", "show", body["number"], stdout=out)
    printed = out.getvalue()
    assert "1-5759e988-bd862e3fe1be46a994272793" in printed
    for name in (server.name, publish.name, task.name, legacy.name):
        assert name in printed
    page = viewer.get(trace_url(TRACE_ID)).content.decode()
    assert all(escape(name) in page for name in (server.name, publish.name, task.name, legacy.name))
    found = viewer.get(reverse("admin:tracing_span_changelist"), {"q": body["number"]})
    assert found["Location"] == trace_url(TRACE_ID)


def test_the_service_map_of_a_small_sale_shows_each_hop_with_counts_matching_the_orders(
    processes, allocation, legacy_api, worker_env
):
    hotpath, _worker = shop(processes, legacy_api, worker_env)
    orders = 4
    headers = [trace_header_mint(time.time(), sampled=True) for _ in range(orders)]
    for header in headers:
        buy(hotpath, header)
    eventually(orders_final(orders), timeout=120, message="the sale's orders were not placed")
    trace_ids = [otel_from_any(header) for header in headers]
    eventually(lambda: all(every_hop_stored(t) for t in trace_ids), timeout=30, message="spans missing")

    edges = {(e.source, e.target): e for e in selectors.service_map(trace_ids=trace_ids)}
    for hop in [("edge", "hotpath"), ("hotpath", "queue"), ("queue", "worker"), ("worker", "legacy-api")]:
        assert edges[hop].calls == orders, (hop, edges[hop].as_dict())
        assert edges[hop].errors == 0
    for hop in [("hotpath", "postgresql"), ("hotpath", "redis"), ("legacy-api", "postgresql")]:
        assert edges[hop].calls >= orders, hop
    assert all(edge.p99_ms > 0 for edge in edges.values())
    assert HotOrder.objects.filter(status="complete").count() == orders


def test_a_worker_killed_mid_task_leaves_no_broken_trace_the_retry_joins_it(
    processes, allocation, legacy_api, legacy_env, worker_env
):
    # A slow legacy API (seconds per order), so that the kill lands during the call.
    slow = {**legacy_env, "LEGACY_ARGON2_TIME_COST": "60", "LEGACY_ARGON2_MEMORY_KIB": "65536"}
    # The order's claim lasts the permit wait, the call's timeout and 7 s: 11 s, well past the
    # few seconds the legacy API takes to finish the killed child's request, which the retry
    # then finds placed. The kill must come within the call's timeout (3 s) of the request.
    env = {**worker_env, "LEGACY_API_TIMEOUT": "3", "ORDERS_SLOT_WAIT_SECONDS": "1"}
    hotpath, worker = shop(processes, legacy_api, env, legacy_env=slow, concurrency=2)

    buy(hotpath, EDGE_HEADER)
    eventually(
        lambda: HotOrder.objects.filter(claimed_by__gt="").exists(),
        timeout=60,
        interval=0.05,
        message="no worker took the order",
    )
    child = int(HotOrder.objects.get().claimed_by.split(":")[0])
    assert child != worker.pid
    # Killed once its request is at the legacy API (which holds the order's reference pending
    # while it works on it): mid-call, not before it.
    eventually(
        lambda: legacy_order_pending(HotOrder.objects.get().reference),
        timeout=30,
        interval=0.05,
        message="the order's request did not reach the legacy API",
    )
    os.kill(child, signal.SIGKILL)  # mid-task: its task span never ends

    eventually(orders_final(1), timeout=120, message="the killed child's order was not placed")
    assert HotOrder.objects.get().status == "complete"
    assert legacy_orders_count() == 1
    eventually(
        lambda: spans_of(TRACE_ID, kind="consumer", error=False, name__contains="order_process"),
        timeout=30,
        message="the retry's task span was not stored",
    )
    # Every task run of the order, and every legacy request it made, is in the buyer's trace.
    assert set(Span.objects.filter(kind="consumer").values_list("trace_id", flat=True)) == {TRACE_ID}
    assert set(Span.objects.filter(service="legacy-api").values_list("trace_id", flat=True)) == {TRACE_ID}
    assert "WorkerLostError" in processes.log(worker)


RECYCLE = ["--max-tasks-per-child", "1"]  # the child is replaced after each task


def test_spans_are_flushed_when_a_gunicorn_worker_exits_and_a_worker_child_is_recycled(
    processes, allocation, legacy_api, worker_env
):
    # Spans would wait ten minutes in memory: only the flush on exit can store them in time.
    held = {**worker_env, **TRACING, "TRACING_EXPORT_DELAY_MS": "600000"}
    legacy_api.env = {**legacy_api.env, **TRACING}
    legacy_api.start()
    port = procs.free_port()
    argv = procs.gunicorn_argv(
        BIN / "gunicorn",
        "config.wsgi_hotpath",
        port=port,
        workers=1,
        config="config/gunicorn.py",
        extra=["--max-requests", "1"],  # the worker exits after the order, as a recycled one does
    )
    procs.wait_for_port(port, process=processes.start(argv, held, name="hotpath"))
    worker = procs.celery_worker_argv(
        BIN / "celery", hostname=f"recycled-{os.getpid()}@%h", concurrency=1, extra=[*RECYCLE, "--pool", "prefork"]
    )
    processes.start(worker, held, name="worker")

    buy(f"http://127.0.0.1:{port}", EDGE_HEADER)
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    # The relay's publish is in the worker's main process, which is not recycled: its span
    # waits for its batch; the recycled child's and the exited gunicorn worker's are flushed.
    eventually(
        lambda: every_hop_stored(TRACE_ID, publish=False),
        timeout=30,
        message="spans were lost when the processes exited",
    )


def test_spans_are_flushed_when_the_hot_path_s_granian_server_stops(processes, allocation, legacy_api, worker_env):
    """A granian worker ends as multiprocessing's children do, without atexit: its spans are
    sent by the finalizer config.wsgi registers."""
    held = {**worker_env, **TRACING, "TRACING_EXPORT_DELAY_MS": "600000"}
    hotpath = processes.granian("config.wsgi_hotpath", held, workers=1, threads=2, name="hotpath")

    buy(hotpath, EDGE_HEADER)
    assert not spans_of(TRACE_ID, service="hotpath")  # held in memory for ten minutes
    processes.stop("hotpath")
    eventually(
        lambda: spans_of(TRACE_ID, service="hotpath", kind="server"),
        timeout=30,
        message="the hot path's spans were lost when its server stopped",
    )
    (server,) = spans_of(TRACE_ID, service="hotpath", kind="server")
    assert server.path == ORDERS_URL
    assert {s.peer for s in children(server, kind="client")} >= {"postgresql", "redis"}


def test_an_order_the_edge_did_not_sample_stores_no_span_and_keeps_its_trace_id(
    processes, allocation, legacy_api, worker_env
):
    hotpath, _worker = shop(processes, legacy_api, worker_env)
    unsampled = EDGE_HEADER.replace("Sampled=1", "Sampled=0")

    body = buy(hotpath, unsampled)
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    sampled = buy(hotpath, trace_header_mint(time.time(), sampled=True))  # a traced one after it
    eventually(orders_final(2), timeout=90, message="the second order was not placed")
    eventually(lambda: Span.objects.filter(kind="consumer").exists(), timeout=30, message="no span was stored")

    # Neither the hot path nor the worker recorded the unsampled order: the task message
    # carried the edge's decision along with its trace.
    assert not Span.objects.filter(trace_id=TRACE_ID).exists()
    assert Span.objects.filter(kind="consumer").count() == 1
    # The log still names its trace, for the logs and EventBridge's targets.
    traces = set(Event.objects.filter(data__number=body["number"]).values_list("trace_id", flat=True))
    assert traces == {"1-5759e988-bd862e3fe1be46a994272793"}
    assert selectors.trace_ids_find(sampled["number"])


def test_with_every_new_trace_kept_the_workers_loops_start_no_trace_of_a_lone_query(
    processes, allocation, legacy_api, worker_env
):
    # Every new trace kept: the outbox relay, the log's consumers and the dashboard's maker
    # query the database several times a second, each query outside any task or request.
    hotpath, _worker = shop(processes, legacy_api, worker_env, tracing={**TRACING, "TRACING_SAMPLE_RATE": "1"})
    header = trace_header_mint(time.time(), sampled=True)
    buy(hotpath, header)
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    trace_id = otel_from_any(header)
    eventually(lambda: every_hop_stored(trace_id), timeout=30, message="the order's spans were not all stored")
    # The consumers have read the order's events since (their loops ran), and the spans of
    # those loops' queries would have been written with the next batch.
    last = Event.objects.order_by("-position").values_list("position", flat=True).first()
    eventually(
        lambda: Checkpoint.objects.filter(last_position__gte=last).count() == len(settings.EVENT_CONSUMERS),
        timeout=30,
        message="the log's consumers did not catch up",
    )
    time.sleep(1.0)  # five of the consumers' loops, and the export's 0.2 s batches after them

    roots = Span.objects.filter(parent_id="")
    # Every trace starts where work entered a process; no trace is one query or cache call.
    lone = list(roots.filter(kind="client").values_list("service", "name")[:10])
    assert not lone, lone
    assert set(roots.values_list("kind", flat=True)) <= {"server", "consumer", "producer"}
    assert Span.objects.filter(trace_id=trace_id, kind="client", peer="postgresql").exists()
