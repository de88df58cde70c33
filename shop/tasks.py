"""Celery tasks of the storefront: the sweeps of checkouts whose answer was lost and of unsent
confirmations, and the hourly pruning of expired sessions and unreachable guests' baskets."""

from __future__ import annotations

from celery import shared_task

from shop import checkout_sweep, confirmations, housekeeping


@shared_task(acks_late=True)
def checkouts_in_doubt_sweep() -> dict[str, int]:
    """Records the orders that checkouts in doubt placed, and settles those that placed none."""
    return checkout_sweep.checkout_sweep().as_dict()


@shared_task(acks_late=True)
def confirmations_unsent_sweep() -> dict[str, int]:
    """Sends the buyers' confirmation emails not sent when their order completed."""
    return confirmations.confirmations_unsent_sweep().as_dict()


@shared_task(acks_late=True)
def sessions_baskets_prune() -> dict:
    """Clears expired sessions and the guests' baskets no live session can reach."""
    return housekeeping.sessions_baskets_prune().as_dict()
