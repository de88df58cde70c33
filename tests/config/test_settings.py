"""Settings as a fresh process reads them from its environment."""

from __future__ import annotations

from tests.conftest import settings_of_fresh_process


def test_the_embedded_file_cache_keeps_its_entries_until_they_expire():
    """Django's file cache deletes a third of its files past 300 entries: a sale of a hundred
    buyers crossed that, and the dashboard's counts and the throttles lost keys at random."""
    caches = settings_of_fresh_process("settings.CACHES", unset=("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"))
    assert caches["default"]["BACKEND"].endswith("FileBasedCache")
    assert caches["default"]["OPTIONS"]["MAX_ENTRIES"] >= 1_000_000
