"""The production broker: Amazon SQS (moto's server on loopback) with a predefined queue and a
dead-letter queue by redrive policy, between a real hot-path gunicorn and a real worker."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from orders.models import HotOrder, OutboxMessage
from tests.conftest import BIN, eventually, free_port, wait_for_port
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
    hotpath = processes.gunicorn("config.wsgi_hotpath", env)

    status, body, _ = http_json(
        "POST", hotpath + ORDERS_URL, order_body(), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert status == 202, body
    # Published to SQS after commit: the outbox is empty and the message waits in the queue.
    assert not OutboxMessage.objects.exists()
    assert queue_depth(sqs) == 1

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
