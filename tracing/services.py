"""Writing the span store: the retention sweep."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from tracing.models import Span


def spans_prune(*, older_than: timedelta | None = None, batch: int = 10_000) -> int:
    """Deletes spans older than TRACING_RETENTION_HOURS, in batches (short transactions).
    Returns how many went."""
    cutoff = timezone.now() - (older_than or timedelta(hours=settings.TRACING_RETENTION_HOURS))
    removed = 0
    while True:
        ids = list(Span.objects.filter(start__lt=cutoff).order_by("start").values_list("id", flat=True)[:batch])
        if not ids:
            return removed
        if connection.vendor == "postgresql":
            removed += Span.objects.filter(id__in=ids).delete()[0]
        else:
            removed += Span.objects.filter(id__in=ids)._raw_delete(Span.objects.db)
