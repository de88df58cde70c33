"""What the storefront keeps only while someone may come back to it: expired sessions (Django
leaves them to a cron job nobody remembers to add), and guests' baskets no session can reach any
more (theirs expired or was replaced, or they joined an account's on sign-in). Run by beat every
hour (shop.tasks.sessions_baskets_prune), so a sale's crowd of one-visit guests does not stay in
the database for ever."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef
from django.utils import timezone

from shop.models import Basket

# Sessions kept in the database, whose rows say whether a guest's basket can still be reached.
DATABASE_SESSIONS = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")
# A basket is given this long after its last change before it is taken for unreachable: one
# made a moment ago is tied to its session just after (shop.services.basket_remember), and an
# order being placed from one that joined an account's still takes its lines through it.
GRACE = timedelta(days=1)
# Deleted a batch at a time, so no statement holds many rows' locks for long.
BATCH = 5000


@dataclass(frozen=True)
class Pruned:
    sessions: int | None  # None where the session engine does not count what it clears
    baskets: int

    def as_dict(self) -> dict:
        return asdict(self)


def _unreachable_guest_baskets():
    old = Basket.objects.filter(owner__isnull=True, updated_at__lt=timezone.now() - GRACE)
    if settings.SESSION_ENGINE not in DATABASE_SESSIONS:
        # No session rows to ask: a guest's session lives SESSION_COOKIE_AGE from its last save.
        return old.filter(updated_at__lt=timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE))
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=timezone.now())
    return old.filter(~Exists(live))


def _sessions_clear() -> int | None:
    if settings.SESSION_ENGINE in DATABASE_SESSIONS:
        cleared, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
        return cleared
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return None


def sessions_baskets_prune() -> Pruned:
    """Clears expired sessions, then deletes the guests' baskets (and their lines) that no live
    session names. Accounts' baskets are never touched."""
    sessions = _sessions_clear()
    baskets = 0
    while True:
        batch = list(_unreachable_guest_baskets().values_list("pk", flat=True)[:BATCH])
        # Checked again in the DELETE itself: a basket changed since it was read stays.
        _, per_model = _unreachable_guest_baskets().filter(pk__in=batch).delete()
        deleted = per_model.get(Basket._meta.label, 0)
        baskets += deleted
        if len(batch) < BATCH or not deleted:
            break
    return Pruned(sessions=sessions, baskets=baskets)
