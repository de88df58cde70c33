"""The all-in-one server (`run.py`) serves the legacy API at /legacy-api/ behind the
development edge, and its workers call it there: a buyer's trace, sampled or not, must reach
the legacy API as the worker sent it, as it does with the legacy API as its own deployment."""

from __future__ import annotations

import time

import pytest

from events.models import Event
from tests.conftest import eventually
from tests.orders.conftest import orders_final
from tests.tracing.test_end_to_end import EDGE_HEADER, TRACE_ID, TRACING, buy, spans_of
from tracing.models import Span

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEGACY_ORDERS = "/legacy-api/orders"


def all_in_one(processes, worker_env, *, sample_rate: str) -> str:
    """The all-in-one server (with its development edge sampling new traces at `sample_rate`),
    the hot path and a worker that calls the legacy API through the all-in-one server."""
    env = {**worker_env, **TRACING, "TRACING_SAMPLE_RATE": sample_rate}
    shop_url = processes.gunicorn("config.wsgi", env, name="shop", config="config/gunicorn.py")
    env["LEGACY_API_URL"] = f"{shop_url}/legacy-api"
    hotpath = processes.granian("config.wsgi_hotpath", env, name="hotpath")
    processes.celery_worker(env)
    return hotpath


def test_a_sampled_order_s_legacy_call_through_the_all_in_one_edge_stays_in_the_buyer_s_trace(
    processes, allocation, worker_env
):
    # The edge samples no new trace: only the worker's own decision can keep the legacy call.
    hotpath = all_in_one(processes, worker_env, sample_rate="0")

    buy(hotpath, EDGE_HEADER)
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    eventually(
        lambda: spans_of(TRACE_ID, kind="server", path=LEGACY_ORDERS),
        timeout=30,
        message="the legacy API's request left the buyer's trace",
    )
    (legacy,) = spans_of(TRACE_ID, kind="server", path=LEGACY_ORDERS)
    # The worker's call ends after the request it made, and is written in its own batch.
    parent = {"trace_id": TRACE_ID, "span_id": legacy.parent_id}
    eventually(lambda: Span.objects.filter(**parent).exists(), timeout=30, message="the call was not stored")
    call = Span.objects.get(**parent)
    assert (call.service, call.kind, call.name) == ("worker", "client", "POST")
    assert Span.objects.filter(trace_id=TRACE_ID, parent_id=legacy.span_id, peer="postgresql").exists()


def test_an_unsampled_order_s_legacy_call_through_the_all_in_one_edge_starts_no_trace(
    processes, allocation, worker_env
):
    # The edge keeps every new trace: a legacy call it sampled afresh would be stored.
    hotpath = all_in_one(processes, worker_env, sample_rate="1")

    body = buy(hotpath, EDGE_HEADER.replace("Sampled=1", "Sampled=0"))
    eventually(orders_final(1), timeout=90, message="the order was not placed")
    assert Event.objects.filter(data__number=body["number"], status="COMPLETE").exists()
    time.sleep(1.0)  # five of the exporters' 0.2 s batches

    # Nothing of the order is stored, in its trace or in one of the legacy call's own.
    assert not Span.objects.filter(trace_id=TRACE_ID).exists()
    assert not Span.objects.filter(path__startswith="/legacy-api/").exists()
