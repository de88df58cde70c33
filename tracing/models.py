"""Spans kept in the shop's own database: enough of each for the waterfall and the service
map, with no extra server. Written in batches by `tracing.exporter`, pruned by age."""

from __future__ import annotations

from django.db import models


class SpanKind(models.TextChoices):
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class Span(models.Model):
    trace_id = models.CharField(max_length=32, db_index=True)  # 32 hex digits (X-Ray: 1-8hex-24hex)
    span_id = models.CharField(max_length=16)
    parent_id = models.CharField(max_length=16, blank=True, default="")
    # The parent came in a header (the edge, another service's call) rather than from this process.
    parent_remote = models.BooleanField(default=False)
    service = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=SpanKind.choices)
    start = models.DateTimeField(db_index=True)
    duration_us = models.BigIntegerField()
    error = models.BooleanField(default=False)
    # The request path of a server span (tokens cut out): X-Ray's filter by URI.
    path = models.CharField(max_length=300, blank=True, default="", db_index=True)
    # The other side of a client span: postgresql, redis, a host; empty for others.
    peer = models.CharField(max_length=100, blank=True, default="")
    attributes = models.JSONField(default=dict)

    class Meta:
        ordering = ["start"]
        verbose_name_plural = "traces"
        indexes = [models.Index(fields=["trace_id", "span_id"], name="tracing_span_trace_span")]

    def __str__(self) -> str:
        return f"{self.service}: {self.name}"
