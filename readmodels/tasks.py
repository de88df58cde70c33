"""Celery tasks of the read models: the inventory view trued up with the stock of record. The
dashboard's maker (readmodels.runner) runs beside them in every worker."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from readmodels import runner
from readmodels.inventory import NAME, inventory_true_up

__all__ = ["runner"]  # imported for its worker signals: the dashboard's maker runs in every worker


@shared_task(ignore_result=True)
def inventory_true_up_all() -> int:
    """Corrects the view of every product that disagrees with the record (logging each);
    nothing to do when the view is not fed."""
    if NAME not in settings.EVENT_CONSUMERS:
        return 0
    return len(inventory_true_up())
