"""Celery tasks of the span store."""

from __future__ import annotations

from celery import shared_task

from tracing import services


@shared_task(acks_late=True)
def spans_prune() -> int:
    """Deletes the spans past their retention."""
    return services.spans_prune()
