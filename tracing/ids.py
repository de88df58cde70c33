"""Trace ids in their two spellings: OpenTelemetry's 32 hex digits and X-Ray's
`1-<8 hex of the epoch seconds>-<24 hex>`. Plain Python, so the edge can share the rules."""

from __future__ import annotations

import re

XRAY_ID = re.compile(r"^1-([0-9a-f]{8})-([0-9a-f]{24})$")
OTEL_ID = re.compile(r"^[0-9a-f]{32}$")


def xray_from_otel(trace_id: str) -> str:
    """`5759e988bd862e3fe1be46a994272793` → `1-5759e988-bd862e3fe1be46a994272793`."""
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def otel_from_any(value: str) -> str | None:
    """The 32-hex id of an X-Ray id, a 32-hex id, or an X-Amzn-Trace-Id header; None otherwise."""
    value = value.strip().lower()
    if value.startswith("root="):
        value = value[5:].split(";", 1)[0]
    if OTEL_ID.match(value):
        return value
    match = XRAY_ID.match(value)
    return match.group(1) + match.group(2) if match else None
