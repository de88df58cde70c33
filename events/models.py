"""The log's tables: events (append-only, in LEGO's EventBridge envelope), each consumer's
checkpoint, the events a consumer gave up on, the read models' snapshots, and how far the log
was pruned."""

from __future__ import annotations

import uuid
from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils import timezone

from events.fields import CurrentTransactionId, TransactionIdField

ENVELOPE_VERSION = "0"


class Event(models.Model):
    """One fact, written in the same transaction as the change it records; never updated.

    `position` is the order of INSERTs, not of commits: readers order by (xid, position) and
    see only what every older transaction has finished with (see selectors.py)."""

    position = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    xid = TransactionIdField(null=True, editable=False, db_default=CurrentTransactionId())
    time = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=256)
    detail_type = models.CharField(max_length=128)
    type = models.CharField(max_length=64)
    subtype = models.CharField(max_length=64)
    status = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    resources = models.JSONField(default=list)
    trace_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["xid", "position"]
        indexes = [
            models.Index(fields=["xid", "position"], name="events_event_commit_order"),
            models.Index(fields=["source", "position"], name="events_event_source"),
            models.Index(fields=["time"], name="events_event_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.source} {self.type}/{self.subtype}/{self.status}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Events are append-only: a correction is a new event.")
        super().save(*args, **kwargs)

    def envelope(self) -> dict:
        """The event as EventBridge delivers it, with shop.LEGO.com's `detail.event`: the
        standard `meta_data` every service shares, and `data`, which is each source's own."""
        return {
            "version": ENVELOPE_VERSION,
            "id": str(self.uuid),
            "detail-type": self.detail_type,
            "source": self.source,
            "account": settings.EVENT_ACCOUNT,
            "time": self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": settings.AWS_REGION,
            "resources": list(self.resources),
            "detail": self.detail(),
        }

    def detail(self) -> dict:
        return {
            "event": {
                "meta_data": {
                    "site_id": settings.EVENT_SITE_ID,
                    "type": self.type,
                    "subtype": self.subtype,
                    "status": self.status,
                    "position": self.position,
                    "trace_id": self.trace_id or None,
                },
                "data": self.data,
            }
        }


class Checkpoint(models.Model):
    """Where a named consumer is in the log: the last event it finished, as (xid, position).

    Two runs never process one consumer at once: a run of a consumer that writes to this
    database holds this row locked while it works, and a run of one whose work is a call
    outside it (the relay to EventBridge) holds a lease instead (`claimed_by` until
    `claimed_until`, on the database's clock), so that no transaction stays open while it
    waits on the call. The row also keeps the failures of the event at the head of its queue."""

    consumer = models.CharField(max_length=100, primary_key=True)
    last_xid = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # db_default: the release before the column, still running during a rolling deploy, inserts too.
    claimed_by = models.CharField(max_length=100, blank=True, default="", db_default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["consumer"]

    def __str__(self) -> str:
        return f"{self.consumer} at {self.last_position}"


class DeadLetter(models.Model):
    """An event one consumer failed on EVENT_CONSUMER_MAX_ATTEMPTS times and stepped over."""

    consumer = models.CharField(max_length=100)
    # Kept while a dead letter points at it: pruning skips such events.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="dead_letters")
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    redriven_at = models.DateTimeField(null=True, blank=True)
    redriven_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # How it was settled when not by a redrive (a read model's rebuild that folded its event
    # in): the merchant sees why it is no longer open, and that a redrive would count it twice.
    resolution = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["consumer", "redriven_at"], name="events_deadletter_open")]

    def __str__(self) -> str:
        return f"{self.consumer}: event #{self.event_id}"


class Snapshot(models.Model):
    """A read model's state as it stood at a place in the log (Gilt's snapshot): a rebuild
    starts from the latest one and replays only the events after it."""

    view = models.CharField(max_length=100)
    last_xid = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["view", "-created_at"], name="events_snapshot_latest")]

    def __str__(self) -> str:
        return f"{self.view} at {self.last_position}"


class Pruned(models.Model):
    """How far pruning has deleted the log: the last event it deleted, as (xid, position). One
    row, moved forward by each prune: a read model rebuilt from a place before it would miss
    what was deleted, so it is rebuilt from a snapshot at or past it instead."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    last_xid = models.BigIntegerField(default=0)
    last_position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "pruned"

    def __str__(self) -> str:
        return f"pruned up to {self.last_position}"
