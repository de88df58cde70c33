"""The relay to EventBridge: against moto's server (a real process), a bus `checkout-bus`
whose rule sends checkout events to SQS receives every event of a small sale exactly once;
entries EventBridge refuses are sent again on their own."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
from django.core.management import CommandError, call_command

from events import relay
from events.aws import BUS_NAME, CHECKOUT_PATTERN
from events.consumers import consumer_run
from events.models import Checkpoint, DeadLetter
from tests.conftest import BIN, free_port, wait_for_port
from tests.events.conftest import sale_event, settled, small_sale

pytestmark = pytest.mark.django_db(transaction=True)

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}


@pytest.fixture
def relay_settings(settings):
    settings.AWS_REGION = AWS["AWS_REGION"]
    settings.EVENTBRIDGE_BUS_NAME = BUS_NAME
    settings.EVENT_CONSUMERS = {"eventbridge": "events.relay.relay_events"}
    return settings


@pytest.fixture
def bus(processes, monkeypatch, relay_settings):
    """moto's server on a free port with the checkout bus, a rule on meta_data.type and an SQS
    target; boto3 in this process pointed at it."""
    port = free_port()
    server = processes.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], {}, name="moto")
    wait_for_port(port, process=server)
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {**AWS, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": AWS["AWS_REGION"]}.items():
        monkeypatch.setenv(name, value)
    events = boto3.client("events", region_name=AWS["AWS_REGION"])
    sqs = boto3.client("sqs", region_name=AWS["AWS_REGION"])
    events.create_event_bus(Name=BUS_NAME)
    queue_url = sqs.create_queue(QueueName="checkout-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="checkout-events-to-sqs", EventBusName=BUS_NAME, EventPattern=json.dumps(CHECKOUT_PATTERN))
    events.put_targets(
        Rule="checkout-events-to-sqs", EventBusName=BUS_NAME, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    return {"sqs": sqs, "queue_url": queue_url}


def drain(bus) -> list[dict]:
    """Everything the queue's consumer receives, deleted as it is read, until the queue is empty."""
    received = []
    while True:
        messages = (
            bus["sqs"]
            .receive_message(QueueUrl=bus["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        if not messages:
            return received
        for message in messages:
            received.append(json.loads(message["Body"]))
            bus["sqs"].delete_message(QueueUrl=bus["queue_url"], ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.slow
def test_every_event_of_a_sale_reaches_the_queue_exactly_once(bus):
    sale = small_sale(12)  # 24 events: three PutEvents calls of at most 10
    stock = [sale_event(100, type="STOCK", subtype="PRODUCT", status="LOW")]  # the rule does not match
    settled()

    call_command("events", "relay", "--once")

    received = drain(bus)
    positions = Counter(body["detail"]["event"]["meta_data"]["position"] for body in received)
    assert positions == Counter({event.position: 1 for event in sale})
    assert stock[0].position not in positions
    by_position = {event.position: event for event in sale}
    for body in received:
        event = by_position[body["detail"]["event"]["meta_data"]["position"]]
        assert (body["source"], body["detail-type"]) == (event.source, event.detail_type)
        assert body["detail"] == event.detail()
        assert body["resources"] == event.resources
    assert Checkpoint.objects.get(consumer="eventbridge").last_position == stock[0].position

    # Run again: nothing more is sent.
    call_command("events", "relay", "--once")
    assert drain(bus) == []


class RefusingEventBridge:
    """EventBridge refusing some entries (throttled): moto's server never does, so this stands
    in for the real service's per-entry answer."""

    def __init__(self, refusals: dict[int, int], code: str = "ThrottlingException"):
        self.refusals = refusals  # position -> times to refuse it
        self.code = code
        self.calls: list[list[int]] = []

    def put_events(self, Entries):  # boto3's keyword
        positions = [json.loads(e["Detail"])["event"]["meta_data"]["position"] for e in Entries]
        self.calls.append(positions)
        results = []
        for position in positions:
            if self.refusals.get(position, 0) > 0:
                self.refusals[position] -= 1
                results.append({"ErrorCode": self.code, "ErrorMessage": "refused"})
            else:
                results.append({"EventId": f"id-{position}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_only_the_refused_entries_are_sent_again(relay_settings, monkeypatch):
    relay_settings.EVENT_RELAY_ENTRY_ATTEMPTS = 3
    sale = small_sale(6)  # 12 events: a call of 10 and a call of 2
    settled()
    refused = [sale[3].position, sale[7].position]
    fake = RefusingEventBridge({position: 1 for position in refused})
    monkeypatch.setattr(relay, "_client", lambda: fake)
    monkeypatch.setattr(relay.time, "sleep", lambda seconds: None)

    assert consumer_run(consumer="eventbridge").processed == 12
    positions = [e.position for e in sale]
    assert fake.calls == [positions[:10], refused, positions[10:]]


def test_an_entry_eventbridge_keeps_throttling_holds_the_relay_back_but_is_never_dead_lettered(
    relay_settings, monkeypatch
):
    relay_settings.EVENT_RELAY_ENTRY_ATTEMPTS = 2
    relay_settings.EVENT_CONSUMER_MAX_ATTEMPTS = 2
    sale = small_sale(8)  # 16 events
    settled()
    stuck = sale[4].position
    fake = RefusingEventBridge({stuck: 6})
    monkeypatch.setattr(relay, "_client", lambda: fake)
    monkeypatch.setattr(relay.time, "sleep", lambda seconds: None)

    result = consumer_run(consumer="eventbridge")
    assert (result.processed, result.failed) == (4, True)
    # The second chunk was not sent: the relay stays at the refused entry.
    assert fake.calls == [[e.position for e in sale[:10]], [stuck]]
    for _ in range(2):
        assert consumer_run(consumer="eventbridge").failed
    checkpoint = Checkpoint.objects.get(consumer="eventbridge")
    assert (checkpoint.last_position, checkpoint.failures) == (sale[3].position, 0)
    assert "ThrottlingException" in checkpoint.last_error
    assert not DeadLetter.objects.exists()

    # Throttling over: the rest goes (the chunk's tail again: at least once).
    assert consumer_run(consumer="eventbridge").processed == 12
    assert Checkpoint.objects.get(consumer="eventbridge").last_position == sale[-1].position


def test_an_entry_eventbridge_rejects_goes_to_the_dead_letters_after_n_runs(relay_settings, monkeypatch):
    relay_settings.EVENT_RELAY_ENTRY_ATTEMPTS = 2
    relay_settings.EVENT_CONSUMER_MAX_ATTEMPTS = 2
    sale = small_sale(2)
    settled()
    fake = RefusingEventBridge({sale[1].position: 99}, code="InvalidArgument")
    monkeypatch.setattr(relay, "_client", lambda: fake)
    monkeypatch.setattr(relay.time, "sleep", lambda seconds: None)

    assert consumer_run(consumer="eventbridge").failed
    result = consumer_run(consumer="eventbridge")
    assert (result.processed, result.dead_lettered, result.failed) == (2, 1, False)
    letter = DeadLetter.objects.get()
    assert (letter.consumer, letter.event_id) == ("eventbridge", sale[1].position)
    assert "InvalidArgument" in letter.error


def test_eventbridge_out_of_reach_holds_the_relay_back_without_dead_letters(relay_settings, monkeypatch):
    relay_settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    small_sale(1)
    settled()

    def unreachable():
        raise ConnectionError("could not connect to the endpoint")

    monkeypatch.setattr(relay, "_client", unreachable)
    for _ in range(3):
        assert consumer_run(consumer="eventbridge").failed
    checkpoint = Checkpoint.objects.get(consumer="eventbridge")
    assert (checkpoint.last_position, checkpoint.failures) == (0, 0)
    assert "could not connect" in checkpoint.last_error
    assert not DeadLetter.objects.exists()


def test_relay_once_says_in_one_line_why_eventbridge_did_not_take_the_events(relay_settings, monkeypatch):
    small_sale(1)
    settled()

    def no_such_bus():
        raise ConnectionError("ResourceNotFoundException: Event bus checkout-bus does not exist.")

    monkeypatch.setattr(relay, "_client", no_such_bus)
    with pytest.raises(CommandError) as refused:
        call_command("events", "relay", "--once")

    assert str(refused.value) == (
        "EventBridge did not take the events (ConnectionError: ResourceNotFoundException: Event bus checkout-bus "
        "does not exist.); the relay will send them again."
    )
