"""The relay to Amazon EventBridge: one consumer of the log like any other, sending every
event to the custom bus (EVENTBRIDGE_BUS_NAME) with its envelope's `detail`.

EventBridge accepts up to 10 entries per PutEvents and may refuse some of them (throttled,
an internal error) while taking the rest: it says so entry by entry, so only the refused
entries are sent again. Delivery is at least once: an entry is sent again after a run that
failed or lost its claim, and the bus's targets deduplicate on `meta_data.position`.
EventBridge itself gives no order, which is why consumers that care read the log, not the bus.

The relay is an external consumer (`external = True`): its runs hold a lease on their
checkpoint, not a transaction, while they wait on EventBridge, and its client gives up on a
hung or unreachable EventBridge within seconds (CLIENT_CONFIG), well inside that lease."""

from __future__ import annotations

import json
import logging
import time

import boto3
from botocore.config import Config
from django.conf import settings

from events.consumers import RetryLater
from events.models import Event

logger = logging.getLogger(__name__)

PUT_EVENTS_MAX_ENTRIES = 10
# Refusals that say EventBridge is busy, not that the entry is wrong: never dead-lettered.
TRANSIENT_ERRORS = {"ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable"}
# botocore's defaults (60 s to connect, 60 s to read, retried) would hold a run for minutes on a
# hung EventBridge; a PutEvents answers in milliseconds. A call that fails this way fails the
# batch (RetryLater), and the next run sends it again.
CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})


def _client():
    # AWS_ENDPOINT_URL (moto in tests) and credentials come from the environment or the role.
    return boto3.client("events", region_name=settings.AWS_REGION, config=CLIENT_CONFIG)


def relay_entry(event: Event) -> dict:
    entry = {
        "EventBusName": settings.EVENTBRIDGE_BUS_NAME,
        "Source": event.source,
        "DetailType": event.detail_type,
        "Detail": json.dumps(event.detail(), separators=(",", ":")),
        "Time": event.time,
    }
    if event.resources:
        entry["Resources"] = list(event.resources)
    return entry


def _send_chunk(client, chunk: list[Event]) -> dict[int, str | RetryLater]:
    """Sends up to 10 events; returns the errors of those still refused, by position."""
    pending = list(chunk)
    errors: dict[int, str | RetryLater] = {}
    for attempt in range(max(1, settings.EVENT_RELAY_ENTRY_ATTEMPTS)):
        if attempt:
            time.sleep(min(2.0, 0.1 * 2**attempt))
        response = client.put_events(Entries=[relay_entry(event) for event in pending])
        refused = []
        for event, result in zip(pending, response["Entries"], strict=True):
            if result.get("ErrorCode"):
                refused.append(event)
                error = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                errors[event.position] = RetryLater(error) if result["ErrorCode"] in TRANSIENT_ERRORS else error
            else:
                errors.pop(event.position, None)
        if not response.get("FailedEntryCount") or not refused:
            return {}
        pending = refused
    logger.warning("EventBridge refused %d entries after retries: %s", len(errors), errors)
    return errors


def relay_events(events: list[Event]) -> list[str | RetryLater | None]:
    """Sends the events in chunks of 10; stops after a chunk with entries still refused, so
    the consumer keeps its place at the first of them (events after it are not sent yet).

    Starts no chunk once a quarter of the run's lease (EVENT_CONSUMER_LEASE_SECONDS) is gone:
    one chunk takes at most about a minute (its attempts, each up to three calls of 7 s), so a
    slow EventBridge never keeps a run past its lease, which another run would take over and
    send the same events again. The events not sent are the next run's."""
    if not settings.EVENTBRIDGE_BUS_NAME:
        raise RuntimeError("EVENTBRIDGE_BUS_NAME is not set")
    client = _client()
    stop_at = time.monotonic() + settings.EVENT_CONSUMER_LEASE_SECONDS / 4
    outcomes: list[str | RetryLater | None] = []
    for start in range(0, len(events), PUT_EVENTS_MAX_ENTRIES):
        if start and time.monotonic() > stop_at:
            break
        chunk = events[start : start + PUT_EVENTS_MAX_ENTRIES]
        errors = _send_chunk(client, chunk)
        outcomes.extend(errors.get(event.position) for event in chunk)
        if errors:
            break
    return outcomes


relay_events.handles_batches = True
relay_events.external = True
