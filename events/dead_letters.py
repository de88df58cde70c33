"""Redriving a consumer's dead letter: its event given to the consumer again, once the cause is
fixed. A read model's letter in the batch's way (its writes and the letter's mark commit
together); an external consumer's (the relay) with no transaction open across its call."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from events.consumers import UnknownConsumer, consumer_handler, handler_outcomes
from events.models import Checkpoint, DeadLetter


def dead_letter_redrive(*, dead_letter_id: int, user=None) -> bool:
    """Gives one dead-lettered event to its consumer again; True once it was processed."""
    external = _external_letter(dead_letter_id)
    if external is not None:
        return _external_redrive(letter=external, user=user)
    with transaction.atomic():
        consumer = DeadLetter.objects.filter(pk=dead_letter_id).values_list("consumer", flat=True).first()
        if consumer in settings.EVENT_VIEWS:
            # A read model's letter under its checkpoint, as its batches, snapshots and rebuilds
            # (checkpoint first, then the letter, as a rebuild locks them): a snapshot is taken
            # wholly before the redrive or wholly after it (events.snapshots._redriven_since).
            Checkpoint.objects.get_or_create(consumer=consumer)
            Checkpoint.objects.select_for_update().get(consumer=consumer)
        letter = (
            DeadLetter.objects.select_for_update(of=("self",))
            .select_related("event")
            .filter(pk=dead_letter_id, redriven_at__isnull=True)
            .first()
        )
        if letter is None:
            return False
        try:
            handler = consumer_handler(letter.consumer)
            outcome = next(handler_outcomes(handler, [letter.event]), None)
            error = (str(outcome[1]) if outcome[1] is not None else None) if outcome else "not taken"
        except UnknownConsumer as exc:
            error = str(exc)
        if error is None:
            letter.redriven_at, letter.redriven_by = timezone.now(), user
        else:
            letter.attempts += 1
            letter.error = error
        letter.save()
        return error is None


def _external_letter(dead_letter_id: int) -> DeadLetter | None:
    """The open dead letter, if its consumer is an external one (the relay)."""
    letter = DeadLetter.objects.select_related("event").filter(pk=dead_letter_id, redriven_at__isnull=True).first()
    if letter is None or letter.consumer not in settings.EVENT_CONSUMERS:
        return None
    return letter if getattr(consumer_handler(letter.consumer), "external", False) else None


def _external_redrive(*, letter: DeadLetter, user=None) -> bool:
    """An external consumer's dead letter given again with no transaction open across the call
    (as its runs, `events.consumers`), then marked in a short one. Two redrives of one letter at
    once may both send it: at least once, as the consumer's runs."""
    outcome = next(handler_outcomes(consumer_handler(letter.consumer), [letter.event]), None)
    error = (str(outcome[1]) if outcome[1] is not None else None) if outcome else "not taken"
    still_open = DeadLetter.objects.filter(pk=letter.pk, redriven_at__isnull=True)
    if error is None:
        still_open.update(redriven_at=timezone.now(), redriven_by=user)
        return True
    still_open.update(attempts=F("attempts") + 1, error=error)
    return False
