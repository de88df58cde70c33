"""The relay to EventBridge: against moto's server (a real process), a bus `checkout-bus`
whose rule sends checkout events to SQS receives every event of a small sale exactly once;
entries EventBridge refuses are sent again on their own; while the relay waits on EventBridge
it holds a lease, not a transaction, so every other reader of the log goes on."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter

import boto3
import pytest
from botocore.config import Config
from django.core.management import CommandError, call_command
from django.db import connection

from events import relay
from events.aws import BUS_NAME, CHECKOUT_PATTERN
from events.consumers import consumer_run, consumer_run_all
from events.dead_letters import dead_letter_redrive
from events.models import Checkpoint, DeadLetter
from events.selectors import events_committed
from tests.conftest import BIN, eventually, free_port, wait_for_port
from tests.events import handlers
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


def test_a_slow_eventbridge_leaves_the_rest_of_the_batch_to_the_next_run_well_inside_the_lease(
    relay_settings, monkeypatch
):
    """Each call answers, slowly: past a quarter of the lease the run starts no more calls, so it
    never outlasts its lease (another run would take over and send the same events again)."""
    sale = small_sale(15)  # 30 events: three calls of 10
    settled()
    fake = RefusingEventBridge({})
    clock = {"now": 0.0}
    slow_calls = fake.put_events

    def slow(Entries):
        clock["now"] += relay_settings.EVENT_CONSUMER_LEASE_SECONDS / 5  # each call a fifth of the lease
        return slow_calls(Entries=Entries)

    fake.put_events = slow
    monkeypatch.setattr(relay, "_client", lambda: fake)
    monkeypatch.setattr(relay.time, "monotonic", lambda: clock["now"])
    assert consumer_run(consumer="eventbridge").processed == 20  # two calls started within the quarter
    assert consumer_run(consumer="eventbridge").processed == 10  # the rest, by the next run
    assert [p for call in fake.calls for p in call] == [e.position for e in sale]


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
    assert (checkpoint.last_position, checkpoint.failures, checkpoint.claimed_until) == (0, 0, None)
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


class EventBridgeMeanwhile:
    """EventBridge taking every entry, and running `meanwhile` during its first call: what
    happens elsewhere while the relay waits on it (a slow or unreachable EventBridge). What
    `meanwhile` raises is kept in `failed` (the relay would take it for EventBridge's)."""

    def __init__(self, meanwhile):
        self.meanwhile = meanwhile
        self.calls: list[list[int]] = []
        self.failed: list[Exception] = []

    def put_events(self, Entries):  # boto3's keyword
        positions = [json.loads(e["Detail"])["event"]["meta_data"]["position"] for e in Entries]
        self.calls.append(positions)
        if len(self.calls) == 1:
            try:
                self.meanwhile()
            except Exception as exc:
                self.failed.append(exc)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"id-{position}"} for position in positions]}


def elsewhere(work):
    """`work()` in a thread with a database connection of its own (another process's view)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = work()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def an_order_committed_is_read() -> int:
    """A buyer's order commits, and the log's readers see it (waited for: the horizon is
    cluster-wide, and any transaction in flight holds it back a moment)."""
    new = sale_event(99)
    eventually(
        lambda: new.position in [event.position for event in events_committed()],
        timeout=20,
        message="an order committed while the relay waited on EventBridge stayed hidden from the log's readers",
    )
    return new.position


def test_a_relay_waiting_on_eventbridge_does_not_hold_back_the_other_readers_of_the_log(relay_settings, monkeypatch):
    relay_settings.EVENT_CONSUMERS = {**relay_settings.EVENT_CONSUMERS, "inventory": "tests.events.handlers.collect"}
    first = sale_event(1)
    settled()
    consumer_run_all(consumer="inventory")
    handlers.seen.clear()
    ordered = []

    def meanwhile():
        ordered.append(elsewhere(an_order_committed_is_read))
        # The read models go on too, as they would in the other workers.
        assert elsewhere(lambda: consumer_run_all(consumer="inventory").processed) == 1

    fake = EventBridgeMeanwhile(meanwhile)
    monkeypatch.setattr(relay, "_client", lambda: fake)

    assert consumer_run(consumer="eventbridge").processed == 1
    assert fake.failed == []
    assert fake.calls == [[first.position]]
    assert handlers.seen == ordered
    checkpoint = Checkpoint.objects.get(consumer="eventbridge")
    assert (checkpoint.last_position, checkpoint.claimed_by, checkpoint.claimed_until) == (first.position, "", None)


def test_a_second_relay_run_while_the_first_waits_on_eventbridge_leaves_the_batch_to_it(relay_settings, monkeypatch):
    sale = small_sale(1)
    settled()
    second = []
    fake = EventBridgeMeanwhile(lambda: second.append(elsewhere(lambda: consumer_run(consumer="eventbridge"))))
    monkeypatch.setattr(relay, "_client", lambda: fake)

    assert consumer_run(consumer="eventbridge").processed == 2
    assert (second[0].claimed, second[0].processed) == (False, 0)
    assert fake.calls == [[event.position for event in sale]]


def test_a_relay_run_that_outlasted_its_lease_leaves_the_place_to_the_run_that_took_over(relay_settings, monkeypatch):
    relay_settings.EVENT_CONSUMER_LEASE_SECONDS = 0  # run out as soon as taken
    sale = small_sale(1)
    settled()
    taken_over = []
    fake = EventBridgeMeanwhile(lambda: taken_over.append(elsewhere(lambda: consumer_run(consumer="eventbridge"))))
    monkeypatch.setattr(relay, "_client", lambda: fake)

    first = consumer_run(consumer="eventbridge")
    assert (first.lost, first.claimed, first.processed) == (True, False, 0)
    assert str(first) == "eventbridge: another run took its claim over and sends its events again"
    assert taken_over[0].processed == 2
    # Sent twice (at least once): the bus's targets deduplicate on meta_data.position.
    positions = [event.position for event in sale]
    assert fake.calls == [positions, positions]
    checkpoint = Checkpoint.objects.get(consumer="eventbridge")
    assert (checkpoint.last_position, checkpoint.claimed_by) == (sale[-1].position, "")


def test_redriving_a_relay_dead_letter_does_not_hold_back_the_readers_of_the_log(relay_settings, monkeypatch):
    sale = small_sale(1)
    settled()
    letter = DeadLetter.objects.create(consumer="eventbridge", event=sale[0], error="InvalidArgument: x", attempts=5)
    ordered = []
    fake = EventBridgeMeanwhile(lambda: ordered.append(elsewhere(an_order_committed_is_read)))
    monkeypatch.setattr(relay, "_client", lambda: fake)

    assert dead_letter_redrive(dead_letter_id=letter.pk) is True
    assert fake.failed == []
    assert fake.calls == [[sale[0].position]] and len(ordered) == 1
    letter.refresh_from_db()
    assert letter.redriven_at is not None
    assert dead_letter_redrive(dead_letter_id=letter.pk) is False


@pytest.fixture
def hung_eventbridge(monkeypatch):
    """An endpoint that takes connections and never answers, the relay's client pointed at it
    with its timeouts cut short, so the test does not wait out the real ones."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(16)
    for name, value in {
        **AWS,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}",
        "AWS_DEFAULT_REGION": AWS["AWS_REGION"],
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        relay,
        "CLIENT_CONFIG",
        relay.CLIENT_CONFIG.merge(Config(connect_timeout=0.5, read_timeout=0.5, retries={"total_max_attempts": 1})),
    )
    yield
    server.close()


def test_a_hung_eventbridge_fails_the_relays_run_and_frees_it_for_the_next(relay_settings, hung_eventbridge):
    relay_settings.EVENT_CONSUMER_MAX_ATTEMPTS = 1
    small_sale(1)
    settled()

    result = consumer_run(consumer="eventbridge")
    assert (result.processed, result.failed) == (0, True)
    checkpoint = Checkpoint.objects.get(consumer="eventbridge")
    assert (checkpoint.last_position, checkpoint.failures, checkpoint.claimed_until) == (0, 0, None)
    assert "timeout" in checkpoint.last_error.lower()
    assert not DeadLetter.objects.exists()


def test_the_relays_client_gives_up_on_a_hung_eventbridge_well_inside_the_relays_lease(settings):
    """botocore's defaults (60 s to connect and to read, retried) would hold a run for minutes."""
    config = relay._client().meta.config
    attempts = config.retries["total_max_attempts"]
    # A hung call's worst: every attempt waits out both timeouts (then botocore's short backoff).
    assert attempts * (config.connect_timeout + config.read_timeout) <= settings.EVENT_CONSUMER_LEASE_SECONDS / 4
