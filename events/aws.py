"""The log's AWS resources for the exported CloudFormation template: the custom bus
`<stack>-checkout-bus` and an example rule delivering checkout events to an SQS queue, with a
dead-letter queue for what EventBridge cannot deliver. Every name starts with the stack's, as
the template's others do, so a second stack (staging beside production) fits in one account
and region; the functions are given the bus's name by reference (EVENTBRIDGE_BUS_NAME)."""

from __future__ import annotations

import json

BUS_NAME = "checkout-bus"  # after the stack's name
# Consumers filter on the envelope's standard meta_data, as shop.LEGO.com's rules do.
CHECKOUT_PATTERN = {"detail": {"event": {"meta_data": {"type": ["CHECKOUT"]}}}}


def stack_scoped(name: str) -> dict:
    """`name` after the stack's name: the same resource of two stacks never has one name."""
    return {"Fn::Sub": f"${{AWS::StackName}}-{name}"}


def cloudformation_resources(*, bus_name: str = BUS_NAME) -> dict:
    """Resources to merge into a template's `Resources`."""
    rule_arn = {"Fn::GetAtt": ["CheckoutEventsRule", "Arn"]}
    return {
        "CheckoutBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": stack_scoped(bus_name)}},
        "CheckoutEventsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stack_scoped("checkout-events"),
                "VisibilityTimeout": 300,
                # Stated (cfn-lint I3013): SQS's default 4 days, shorter than the dead-letter
                # queue's 14, which counts from a message's first arrival here.
                "MessageRetentionPeriod": 4 * 24 * 3600,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        },
        # Both what the queue's consumer keeps failing on and what EventBridge could not
        # deliver to the queue end here.
        "CheckoutEventsDLQ": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": stack_scoped("checkout-events-dlq"), "MessageRetentionPeriod": 1209600},
        },
        "CheckoutEventsRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": stack_scoped("checkout-events-to-sqs"),
                "Description": "Checkout events of the shop's unified log, to the checkout-events queue.",
                "EventBusName": {"Ref": "CheckoutBus"},
                "EventPattern": json.loads(json.dumps(CHECKOUT_PATTERN)),
                "State": "ENABLED",
                "Targets": [
                    {
                        "Id": "checkout-events-queue",
                        "Arn": {"Fn::GetAtt": ["CheckoutEventsQueue", "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]}},
                        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                    }
                ],
            },
        },
        "CheckoutEventsQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "CheckoutEventsQueue"}, {"Ref": "CheckoutEventsDLQ"}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": [
                                {"Fn::GetAtt": ["CheckoutEventsQueue", "Arn"]},
                                {"Fn::GetAtt": ["CheckoutEventsDLQ", "Arn"]},
                            ],
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                },
            },
        },
    }
