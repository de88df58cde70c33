"""The merchant's live sale dashboard in the benchmark: a screenshot of what a merchant sees
during the stampede, and what the log's consumers (the read models) cost in CPU.

    dashboard_screenshot(stack, path, *, width=1280) -> Path
    consumers_cpu_reset() -> None
    consumers_cpu() -> dict
    views_check(stack) -> dict

Both run in the benchmark's process, after `django.setup()` with the stack's environment (as
bench.stampede does): the screenshot signs in through the edge as a staff user made for it, with
Debian's Chromium driven by Playwright; the CPU figures are the seconds each consumer's runs took
in the workers (events.tasks.consumers_run adds them up in the cache)."""

from __future__ import annotations

import secrets
import shutil
import threading
from pathlib import Path

DASHBOARD = "/admin/dashboard/"
USERNAME = "bench-dashboard"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def _staff_user() -> tuple[str, str]:
    """A staff user who may see the dashboard and nothing else, with a fresh password."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    password = secrets.token_urlsafe(18)
    user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": "bench@example.com"})
    user.is_staff, user.is_active = True, True
    user.set_password(password)
    user.save()
    user.user_permissions.add(Permission.objects.get(content_type__app_label="readmodels", codename="view_dashboard"))
    return USERNAME, password


def dashboard_screenshot(
    stack,
    path: Path | str,
    *,
    width: int = 1280,
    wait_seconds: float = 20.0,
    ready: threading.Event | None = None,
    take: threading.Event | None = None,
) -> Path:
    """Signs in at the stack's edge and saves a full-page PNG of the live dashboard to `path`,
    once its figures have come live from the JSON (the charts drawn). With `ready` and
    `take`, Chromium starts and the page opens first (`ready` is set then), and the picture
    is taken when `take` is set: the benchmark starts its stampede in between, so that
    Chromium's start does not fall inside what it measures."""
    from playwright.sync_api import sync_playwright

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    username, password = _staff_user()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    base = stack.url("edge", "")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{base}/admin/login/?next={DASHBOARD}")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_url(f"**{DASHBOARD}", timeout=wait_seconds * 1000)
            if ready is not None:
                ready.set()
            if take is not None:
                take.wait()
            page.wait_for_selector(".dash-live", timeout=wait_seconds * 1000)
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    return path


def consumers_cpu_reset() -> None:
    """Zeroes the consumers' CPU figures (before the stampede)."""
    from django.conf import settings
    from django.core.cache import cache

    from events.runner import consumer_cpu_key

    cache.delete_many([consumer_cpu_key(name) for name in settings.EVENT_CONSUMERS])


def consumers_cpu() -> dict:
    """CPU seconds each consumer's runs took since the last reset, and their total."""
    from django.conf import settings
    from django.core.cache import cache

    from events.runner import consumer_cpu_key

    names = sorted(settings.EVENT_CONSUMERS)
    found = cache.get_many([consumer_cpu_key(name) for name in names])
    seconds = {name: round((found.get(consumer_cpu_key(name)) or 0) / 1_000_000, 3) for name in names}
    return {"per_consumer": seconds, "total_seconds": round(sum(seconds.values()), 3)}


def views_check(stack) -> dict:
    """`manage.py events rebuild --check` on the stack (after the stampede, or after the
    drills): whether every read model equals a rebuild from the log, and what differed."""
    import subprocess
    import sys

    from bench.stack import ROOT

    done = subprocess.run(
        [sys.executable, "manage.py", "events", "rebuild", "--check"],
        cwd=ROOT,
        env=stack.env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    return {"in_step": done.returncode == 0, "output": (done.stdout + done.stderr).strip()[-4000:]}
