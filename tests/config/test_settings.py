"""Settings as a fresh process reads them from its environment."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.utils.module_loading import import_string

from tests.conftest import ROOT, settings_of_fresh_process


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


def test_the_embedded_file_cache_counts_every_count_made_at_once(tmp_path):
    """Django's file cache reads, then writes, in `add` and `incr`: tries counted at once (the
    card-testing limit's, a throttle's) read the same count, and counts were lost, so more tries
    got through than the limit allows. Threads and processes alike count here."""
    caches = settings_of_fresh_process("settings.CACHES", unset=("REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL"))
    cache = import_string(caches["default"]["BACKEND"])(str(tmp_path), {"OPTIONS": caches["default"]["OPTIONS"]})
    script = (
        "import sys\n"
        "from django.utils.module_loading import import_string\n"
        f"cache = import_string({caches['default']['BACKEND']!r})({str(tmp_path)!r}, {{}})\n"
        "for _ in range(25):\n"
        "    cache.add('tries', 0, 600)\n"
        "    cache.incr('tries')\n"
    )

    def count(_):
        for _ in range(25):
            cache.add("tries", 0, 600)  # as shop.window_counts counts
            cache.incr("tries")

    others = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(count, range(4)))
    assert all(other.wait(60) == 0 for other in others)

    assert cache.get("tries") == 6 * 25
    cache.decr("tries")  # a try taken back
    assert cache.get("tries") == 6 * 25 - 1


def test_the_embedded_file_cache_keeps_a_counts_window_as_it_counts(tmp_path, monkeypatch):
    """Django's `incr` writes the count back with the cache's default timeout (five minutes): an
    hour's count (three password reset links an hour per inbox) was forgotten five minutes after
    its last try, where Redis keeps the key's expiry, so the limit let twelve times as many by."""
    from config.file_cache import ExpiringFileCache

    cache = ExpiringFileCache(str(tmp_path), {})
    cache.add("links", 0, 3600)  # as shop.window_counts counts
    assert cache.incr("links") == 1
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 600)

    assert cache.get("links") == 1
    assert cache.incr("links") == 2
    cache.add("default", 1)  # no timeout given: Django's default (300 s), not forever
    monkeypatch.setattr(time, "time", lambda: now + 3601)
    assert cache.get("links") is None and cache.get("default") is None
