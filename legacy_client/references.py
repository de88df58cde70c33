"""The legacy API's order reference for a buyer's Idempotency-Key: plain hashing, no HTTP, so
models and views may derive it without reaching for the client."""

from __future__ import annotations

import hashlib


def reference_for_key(idempotency_key: str) -> str:
    """The legacy API's reference for a buyer's Idempotency-Key, the same whichever side takes
    the order: a retry that the edge sends to the monolith after the hot path accepted it (the
    route switched off, a canary without its cookie) then finds the same order instead of
    placing another. At most 64 characters, as the legacy API wants."""
    return "key-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
