"""What holds data in the exported CloudFormation template outlives the stack: deleting it, or
an update that replaces a queue, keeps the orders accepted and not yet placed."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from django.core.management import call_command

from tests.conftest import BIN, free_port, wait_for_port

DATA = {"OrderQueue", "OrderDeadLetterQueue", "CheckoutEventsQueue", "CheckoutEventsDLQ", "MinisiteBucket"}


@pytest.fixture
def template(edge_routes, tmp_path):
    call_command("edge_export", "--target", "cloudformation", "--out", str(tmp_path))
    path = tmp_path / "cloudformation.json"
    return path, json.loads(path.read_text())


def test_the_queues_and_the_bucket_are_retained_on_deletion_and_replacement(template):
    """SQS and S3 have no snapshots: they are kept, and nothing else is (a function, a role or
    an API is made again from the template)."""
    path, data = template
    resources = data["Resources"]
    kept = {
        name
        for name, r in resources.items()
        if (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) == ("Retain", "Retain")
    }
    assert kept >= DATA
    assert {resources[name]["Type"] for name in kept} == {"AWS::SQS::Queue", "AWS::S3::Bucket"}
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--include-checks", "I3011", "--", str(path)], capture_output=True, text=True
    )
    assert "3011" not in result.stdout, result.stdout


def test_deleting_the_stack_keeps_the_queues_and_the_bucket(template, processes):
    """The template's queues and bucket, deployed to moto's server and the stack deleted: they
    are still there (moto cannot deploy the whole template: it lacks some of its types)."""
    _, data = template
    port = free_port()
    process = processes.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], {}, name="moto")
    wait_for_port(port, process=process)
    aws = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    cloudformation, sqs, s3 = (boto3.client(name, **aws) for name in ("cloudformation", "sqs", "s3"))
    body = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {n: data["Resources"][n] for n in DATA}}
    cloudformation.create_stack(StackName="shop", TemplateBody=json.dumps(body))
    queues = set(sqs.list_queues()["QueueUrls"])
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert len(queues) == 4 and len(buckets) == 1

    cloudformation.delete_stack(StackName="shop")

    assert set(sqs.list_queues().get("QueueUrls", [])) == queues
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == buckets
