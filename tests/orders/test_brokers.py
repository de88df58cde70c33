"""The production broker: Amazon SQS (moto's server on loopback) with a predefined queue and a
dead-letter queue by redrive policy, between a real hot-path gunicorn and a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import boto3
import pytest

from orders.models import HotOrder, OutboxMessage
from tests.conftest import BIN, ROOT, eventually, free_port, wait_for_port
from tests.orders.conftest import ORDERS_URL, http_json, legacy_orders_count, order_body

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}


@pytest.fixture
def sqs(processes):
    """moto's SQS on a free loopback port, with the orders queue and its dead-letter queue."""
    port = free_port()
    server = processes.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], {}, name="moto")
    wait_for_port(port, process=server)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=AWS["AWS_REGION"],
        aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
    )
    dlq_url = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = client.create_queue(
        QueueName="orders",
        Attributes={
            # Longer than any task including its retry countdowns.
            "VisibilityTimeout": "900",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    return {"client": client, "endpoint": endpoint, "queue_url": queue_url, "dlq_url": dlq_url}


def queue_depth(sqs) -> int:
    attributes = sqs["client"].get_queue_attributes(
        QueueUrl=sqs["queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_order_travels_through_sqs_from_the_hot_path_to_a_real_worker(
    processes, process_env, allocation, legacy_api, sqs
):
    env = {
        **process_env,
        **AWS,
        "CELERY_BROKER_URL": "sqs://",
        "AWS_ENDPOINT_URL": sqs["endpoint"],
        "ORDERS_QUEUE_URL": sqs["queue_url"],
        "ORDERS_SQS_WAIT_SECONDS": "1",
        "LEGACY_API_URL": legacy_api.url,
    }
    legacy_api.start()
    hotpath = processes.granian("config.wsgi_hotpath", env)

    status, body, _ = http_json(
        "POST", hotpath + ORDERS_URL, order_body(), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert status == 202, body
    # Committed with its outbox row, nothing published by the request: a worker's relay does that.
    assert OutboxMessage.objects.filter(order__number=body["number"]).exists()
    assert queue_depth(sqs) == 0

    worker = processes.celery_worker(env, concurrency=1)
    eventually(
        lambda: HotOrder.objects.filter(number=body["number"], status="complete").exists(),
        timeout=90,
        message="the worker did not take the order from SQS",
    )
    assert legacy_orders_count() == 1
    eventually(lambda: queue_depth(sqs) == 0, timeout=30, message="the message was not deleted after the task")
    status, polled, _ = http_json("GET", hotpath + body["status_url"])
    assert (status, polled["status"]) == (200, "complete")
    assert "sqs" in processes.log(worker).lower()


def template_environment(resolved: dict[str, str]) -> dict[str, str]:
    """The hot path Lambda's environment exactly as the exported CloudFormation template sets
    it, with CloudFormation's references resolved to this machine's stand-ins."""
    import re
    import tempfile
    from pathlib import Path

    from django.core.management import call_command

    from tests.edge.conftest import ensure_origins

    ensure_origins()  # a transactional test's flush removed the migration's origins
    out = Path(tempfile.mkdtemp())
    call_command("edge_export", "--target", "cloudformation", "--out", str(out))
    template = json.loads((out / "cloudformation.json").read_text())
    variables = template["Resources"]["HotpathFunction"]["Properties"]["Environment"]["Variables"]

    def value(v) -> str:
        if isinstance(v, str):
            return v
        if "Ref" in v:
            return resolved[v["Ref"]]
        text = v["Fn::Sub"]
        text = re.sub(
            r"\{\{resolve:secretsmanager:\$\{AppSecretName\}:SecretString:(\w+)\}\}", lambda m: resolved[m[1]], text
        )
        return re.sub(r"\$\{([^}]+)\}", lambda m: resolved[m[1]], text)

    return {name: value(v) for name, v in variables.items()}


def test_the_templates_own_environment_publishes_an_order_to_sqs(processes, process_env, allocation, sqs):
    """The hot path run with the variables the exported template gives its Lambda: the order
    reaches the very queue the template's OrderQueue names (it once set ORDER_QUEUE_URL, which
    the code never read, and publishing failed with QueueDoesNotExist)."""
    from cryptography.fernet import Fernet

    host = "abc123.execute-api.eu-west-1.amazonaws.com"
    env = template_environment(
        {
            "DatabaseUrl": process_env["DATABASE_URL"],
            "RedisUrl": process_env.get("REDIS_URL", ""),
            "SecretKey": "template-test-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "OrderQueue": sqs["queue_url"],
            "OriginSecret": "origin-" + uuid.uuid4().hex,
            "HotpathApi": "abc123",
            "LegacyApi": "def456",
            "AWS::Region": AWS["AWS_REGION"],
            "Distribution.DomainName": "d111111abcdef8.cloudfront.net",
            "legacy_api_token_hotpath": "hotpath-" + uuid.uuid4().hex,
            "card_encryption_key": Fernet.generate_key().decode(),
        }
    )
    assert env["DJANGO_ENV"] == "production" and env["ORDERS_QUEUE_URL"] == sqs["queue_url"]
    full = {
        **process_env,
        **AWS,
        **env,
        "AWS_ENDPOINT_URL": sqs["endpoint"],
        # gunicorn stands in for API Gateway and apig-wsgi, which take the scheme from this header.
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }
    hotpath = processes.granian("config.wsgi_hotpath", full)
    headers = {"Host": host, "X-Forwarded-Proto": "https", "Idempotency-Key": uuid.uuid4().hex}

    refused, _, _ = http_json("POST", hotpath + ORDERS_URL, order_body(), headers=headers)
    assert refused == 403, "without the origin secret CloudFront adds, the origin refuses"
    headers["X-Origin-Verify"] = env["EDGE_ORIGIN_SECRET"]
    status, body, _ = http_json("POST", hotpath + ORDERS_URL, order_body(), headers=headers)
    assert status == 202, body
    assert HotOrder.objects.filter(number=body["number"], outbox__isnull=False).exists()
    # The relay (a worker's, or the beat function's sweep) run with that environment publishes
    # the order to the very queue the template names.
    relay = "import django; django.setup(); from orders.outbox import outbox_relay; print(outbox_relay())"
    done = subprocess.run([sys.executable, "-c", relay], env=full, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1", done.stderr
    assert queue_depth(sqs) == 1
    assert not OutboxMessage.objects.filter(order__number=body["number"]).exists()
