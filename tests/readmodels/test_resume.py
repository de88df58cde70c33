"""A read model's consumer killed mid-batch resumes from its checkpoint and counts nothing twice."""

from __future__ import annotations

import subprocess

import pytest
from django.db.models import Sum

from events.models import Checkpoint
from legacy_api.models import Order
from readmodels.models import SalesMinute
from tests.conftest import PYTHON, ROOT
from tests.readmodels.conftest import catch_up, place, settled

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_consumer_killed_mid_batch_resumes_from_its_checkpoint_and_counts_nothing_twice(catalogue, process_env):
    for product in ["spinning-reel"] * 6 + ["muskie-casting-rod"] * 4:
        place(product, 1)
    settled()
    catch_up("inventory")
    env = {
        **process_env,
        "EVENT_CONSUMERS": "sales_per_minute=tests.readmodels.handlers.sales_per_minute_killed",
        "SALES_KILL_AT": "7",
    }
    script = (
        "import django; django.setup(); from events.consumers import consumer_run_all; "
        "consumer_run_all(consumer='sales_per_minute', batch_size=5)"
    )
    run = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    # The first batch of five committed with its checkpoint; the second died with its writes.
    checkpoint = Checkpoint.objects.get(consumer="sales_per_minute")
    assert checkpoint.last_position > 0
    partial = SalesMinute.objects.aggregate(orders=Sum("orders"))["orders"] or 0
    assert 0 < partial < Order.objects.count()

    catch_up("sales_per_minute")

    minutes = SalesMinute.objects.aggregate(orders=Sum("orders"), units=Sum("units"))
    assert minutes == {"orders": 10, "units": 10}
    per_product = SalesMinute.objects.values("product").annotate(n=Sum("orders")).values_list("product", "n")
    assert dict(per_product) == {"muskie-casting-rod": 4, "spinning-reel": 6}
