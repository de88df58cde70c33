"""The embedded broker: a message is never visible to a worker before it is written whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kombu import Connection

from config import broker
from tests.conftest import ROOT


def test_the_embedded_broker_uses_the_whole_message_transport(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    code = (
        "import django; django.setup(); from config.celery import app; "
        "print(type(app.connection_for_write().transport).__module__)"
    )
    output = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)

    assert output.stdout.strip() == "config.broker", output.stderr


def test_a_message_appears_under_its_queue_name_only_once_written_whole(tmp_path, monkeypatch):
    seen_at_rename: list[tuple[list[str], bytes]] = []
    real_replace = os.replace

    def replace(src, dst):
        # At the moment the message gets its readable name, nothing with that name exists
        # yet and the partial file already holds the whole message.
        seen_at_rename.append((sorted(os.listdir(tmp_path)), open(src, "rb").read()))  # noqa: SIM115
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace)
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "control_folder": str(tmp_path)}
    with Connection("filesystem://localhost/", transport=broker.Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("orders")
        queue.put({"order_id": 7})
        [(names_before, written)] = seen_at_rename
        assert not [name for name in names_before if name.endswith(".orders.msg")]
        assert json.loads(written)["properties"]["delivery_info"]["routing_key"] == "orders"
        message = queue.get(timeout=1)
        message.ack()
        assert message.payload == {"order_id": 7}
        queue.close()
