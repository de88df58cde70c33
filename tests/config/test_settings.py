"""Settings as a fresh process reads them from its environment."""

from __future__ import annotations

import time
from pathlib import Path

from django.utils.module_loading import import_string

from tests.conftest import settings_of_fresh_process


def test_the_embedded_file_cache_keeps_its_entries_until_they_expire():
    """Django's file cache deletes a third of its files past 300 entries: a sale of a hundred
    buyers crossed that, and the dashboard's counts and the throttles lost keys at random."""
    caches = settings_of_fresh_process("settings.CACHES", unset=("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"))
    assert caches["default"]["BACKEND"].endswith("FileCache")
    assert caches["default"]["OPTIONS"]["MAX_ENTRIES"] >= 1_000_000


def test_the_embedded_file_cache_deletes_what_has_expired(tmp_path):
    """With its random cull held off, Django's file cache deleted an expired entry only when it
    was read again: a window's counts never are, and every write listed a directory that only grew."""
    caches = settings_of_fresh_process("settings.CACHES", unset=("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"))
    cache = import_string(caches["default"]["BACKEND"])(str(tmp_path), {"OPTIONS": caches["default"]["OPTIONS"]})
    for i in range(500):  # the dashboard's answers per second, a throttle's counts per window
        cache.add(f"readmodels:answers:rod:{i}:accepted", 0, 1)
    cache.set("live", 1, 600)
    time.sleep(1.2)
    cache._next_cull = 0.0  # its next look, which comes every few seconds
    cache.add("next-window", 0, 600)

    assert len(list(Path(tmp_path).glob("*.djcache"))) <= 10
    assert cache.get("live") == 1
