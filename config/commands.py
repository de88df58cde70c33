"""What the shop's management commands share: their options read the one way."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone


def when_option(value: str | None, option: str) -> datetime | None:
    """An ISO date and time given to `option`, aware (in the shop's zone when it names none).
    Parsed in the command, not by argparse: a bad one is then one line naming the option and
    exit 1, like any refusal (argparse's own error exits 2, and a CommandError raised while it
    parses escapes as a traceback)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option}: {value!r} is not an ISO date and time, e.g. 2026-11-27T09:00:00+00:00.")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())
