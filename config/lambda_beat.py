"""AWS Lambda entry point of the sweeper: runs the tasks of the beat schedule that are due.

An EventBridge schedule invokes it every minute (the exported CloudFormation template), in
place of `celery beat`, which has no home among Lambda functions. A task scheduled every
minute or more often runs at each invocation; one scheduled every N minutes, once in each
N-minute slot since the epoch, at the first invocation of the slot (by the event's scheduled
`time`) that claims it in Redis: the hourly snapshots and pruning at minute 0, or at minute 1
when the invocation of minute 0 never came (or its sweep failed), and not again when
EventBridge delivers one invocation twice. Without Redis, at the slot's first minute. The
tasks run in this process; what they publish (an order left in the outbox, a stalled order)
goes to SQS.
"""

import logging
import os
import time
from datetime import datetime, timedelta

os.environ.setdefault("SHOP_DEPLOYMENT", "hotpath")
os.environ.setdefault("DJANGO_ENV", "production")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402

from config.cache import redis_client  # noqa: E402
from config.celery import app  # noqa: E402

# The apps' task modules, as a worker imports them when it starts: Celery finds them lazily
# (autodiscover_tasks), and without this every sweep below was "never registered".
app.loader.import_default_modules()

logger = logging.getLogger(__name__)


def _minute(event: dict | None) -> int:
    """Minutes since the epoch of this invocation: EventBridge's scheduled time, else now."""
    stamp = (event or {}).get("time")
    if stamp:
        try:
            return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() // 60)
        except ValueError:
            logger.warning("an event time that is not ISO 8601: %r", stamp)
    return int(time.time() // 60)


def _claim(name: str, schedule, minute: int) -> str | None:
    """Whether the sweep is due at this invocation: None if not; else the cache key of the
    slot it claimed ("" when nothing was claimed), to give back if the sweep fails."""
    seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
    if not isinstance(seconds, int | float):
        return ""  # a schedule of another kind: each invocation
    every = max(1, round(seconds / 60))
    if every == 1:
        return ""
    if redis_client() is None:
        # A cache of this instance's own (no REDIS_URL) cannot tell what another instance
        # ran: the slot's own minute decides.
        return "" if minute % every == 0 else None
    key = f"lambda-beat:{name}:{minute // every}"
    try:
        return key if cache.add(key, minute, timeout=2 * every * 60) else None
    except Exception:
        logger.warning("the cache could not say whether %s ran in this slot; running it on the slot's minute", name)
        return "" if minute % every == 0 else None


def lambda_handler(event=None, context=None) -> dict:
    minute = _minute(event)
    results = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        claimed = _claim(name, entry["schedule"], minute)
        if claimed is None:
            continue
        # One sweep failing must not keep the others from running.
        try:
            results[name] = app.tasks[entry["task"]].apply().get(propagate=True)
        except Exception as exc:
            logger.exception("sweep %s failed", name)
            results[name] = f"failed: {exc!r}"
            if claimed:  # the next invocation tries it again
                try:
                    cache.delete(claimed)
                except Exception:
                    logger.warning("could not give back %s's slot", name)
    return {"ran": results}
