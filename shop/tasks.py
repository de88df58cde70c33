"""Celery tasks of the storefront: the sweep of checkouts whose answer was lost."""

from __future__ import annotations

from celery import shared_task

from shop import checkout_sweep


@shared_task(acks_late=True)
def checkouts_in_doubt_sweep() -> dict[str, int]:
    """Records the orders that checkouts in doubt placed, and settles those that placed none."""
    return checkout_sweep.checkout_sweep().as_dict()
