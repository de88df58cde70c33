"""The log's CloudFormation resources (the checkout bus, a rule on meta_data with an SQS
target and its dead-letter queue) pass cfn-lint in a template of their own."""

from __future__ import annotations

import json
import subprocess

from events.aws import BUS_NAME, CHECKOUT_PATTERN, cloudformation_resources
from tests.conftest import BIN


def _lint(resources: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, indent=2))
    return subprocess.run([str(BIN / "cfn-lint"), str(path)], capture_output=True, text=True)


def test_the_bus_rule_queue_and_dead_letter_queue_pass_cfn_lint(tmp_path):
    result = _lint(cloudformation_resources(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_rule(tmp_path):
    resources = cloudformation_resources()
    resources["CheckoutEventsRule"]["Properties"]["Targets"][0]["Arn"] = {"Fn::GetAtt": ["NoSuchQueue", "Arn"]}
    assert _lint(resources, tmp_path).returncode != 0


def test_the_rule_sends_checkout_events_on_the_checkout_bus_with_a_dead_letter_queue():
    resources = cloudformation_resources()
    assert resources["CheckoutBus"]["Properties"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{BUS_NAME}"}
    rule = resources["CheckoutEventsRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "CheckoutBus"}
    assert rule["EventPattern"] == CHECKOUT_PATTERN
    target = rule["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": ["CheckoutEventsQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]}
    redrive = resources["CheckoutEventsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]}


def test_every_name_starts_with_the_stack_s_so_two_stacks_fit_in_one_region():
    """Fixed names (a bus, queues and a rule) made a second stack in the account fail."""
    resources = cloudformation_resources()
    names = [
        properties[key]
        for properties in (r["Properties"] for r in resources.values())
        for key in ("Name", "QueueName")
        if key in properties
    ]
    assert len(names) == 4
    for name in names:
        assert name["Fn::Sub"].startswith("${AWS::StackName}-"), name
