"""What the storefront keeps only while someone may come back to it: expired sessions (Django
leaves them to a cron job nobody remembers to add), and guests' baskets no session can reach any
more (theirs expired or was replaced, or they joined an account's on sign-in); and the card-wide
fingerprints of buy-now refusals kept from the release before (BuyNowRefusal.fingerprint_before),
once their keys' retries are long over. Run by beat every hour (shop.tasks.sessions_baskets_prune),
so a sale's crowd of one-visit guests does not stay in the database for ever."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef
from django.utils import timezone

from shop.models import Basket, BuyNowRefusal

# Sessions kept in the database, whose rows say whether a guest's basket can still be reached.
DATABASE_SESSIONS = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")
# A basket is given this long after its last change before it is taken for unreachable: one
# made a moment ago is tied to its session just after (shop.services.basket_remember), and an
# order being placed from one that joined an account's still takes its lines through it.
GRACE = timedelta(days=1)
# How long a refusal's card-wide fingerprint is still matched after the refusal: a buyer's retries
# after a lost answer come within minutes (the hot path remembers its keys for a day).
REFUSAL_FINGERPRINT_BEFORE_KEPT = timedelta(days=7)
# Deleted a batch at a time, so no statement holds many rows' locks for long.
BATCH = 5000


@dataclass(frozen=True)
class Pruned:
    sessions: int | None  # None where the session engine does not count what it clears
    baskets: int
    refusal_fingerprints: int = 0  # card-wide fingerprints of refusals dropped

    def as_dict(self) -> dict:
        return asdict(self)


def _old_guest_baskets():
    return Basket.objects.filter(owner__isnull=True, updated_at__lt=timezone.now() - GRACE)


def _unreachable_guest_baskets():
    """The old guests' baskets no live session row names (a database session engine)."""
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=timezone.now())
    return _old_guest_baskets().filter(~Exists(live))


def _sessions_clear() -> int | None:
    if settings.SESSION_ENGINE not in DATABASE_SESSIONS:
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
        return None
    cleared = 0
    while True:  # a batch at a time: the first run may find a great many
        keys = list(Session.objects.filter(expire_date__lt=timezone.now()).values_list("pk", flat=True)[:BATCH])
        deleted, _ = Session.objects.filter(pk__in=keys, expire_date__lt=timezone.now()).delete()
        cleared += deleted
        if len(keys) < BATCH or not deleted:
            return cleared


def _baskets_prune_by_rows() -> int:
    baskets = 0
    while True:
        batch = list(_unreachable_guest_baskets().values_list("pk", flat=True)[:BATCH])
        # Asked again as they are deleted (Django collects the rows in the delete's transaction):
        # a basket changed since this batch was read is left.
        _, per_model = _unreachable_guest_baskets().filter(pk__in=batch).delete()
        deleted = per_model.get(Basket._meta.label, 0)
        baskets += deleted
        if len(batch) < BATCH or not deleted:
            return baskets


def _baskets_prune_by_store() -> int:
    """Where sessions keep no rows (a cache engine), each old basket's session is asked for."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    baskets = 0
    last = 0
    while True:
        batch = list(_old_guest_baskets().filter(pk__gt=last).order_by("pk").values_list("pk", "session_key")[:BATCH])
        if not batch:
            return baskets
        last = batch[-1][0]
        gone = [pk for pk, key in batch if not key or not store.exists(key)]
        _, per_model = _old_guest_baskets().filter(pk__in=gone).delete()
        baskets += per_model.get(Basket._meta.label, 0)


def sessions_baskets_prune() -> Pruned:
    """Clears expired sessions, then deletes the guests' baskets (and their lines) that no live
    session names. Accounts' baskets are never touched."""
    sessions = _sessions_clear()
    by_rows = settings.SESSION_ENGINE in DATABASE_SESSIONS
    baskets = _baskets_prune_by_rows() if by_rows else _baskets_prune_by_store()
    return Pruned(sessions=sessions, baskets=baskets, refusal_fingerprints=refusal_fingerprints_before_drop())


def refusal_fingerprints_before_drop() -> int:
    """Drops the card-wide fingerprints of old buy-now refusals (kept from the release before,
    shop migration 0021): a refusal left without one answers its decline to every body."""
    old = timezone.now() - REFUSAL_FINGERPRINT_BEFORE_KEPT
    return BuyNowRefusal.objects.filter(refused_at__lt=old).exclude(fingerprint_before="").update(fingerprint_before="")
