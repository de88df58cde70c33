"""AWS Lambda entry point of the sweeper: runs every task of the beat schedule once.

An EventBridge schedule invokes it every minute (the exported CloudFormation template), in
place of `celery beat`, which has no home among Lambda functions. The tasks run in this
process; what they publish (an order left in the outbox, a stalled order) goes to SQS.
"""

import logging
import os

os.environ.setdefault("SHOP_DEPLOYMENT", "hotpath")
os.environ.setdefault("DJANGO_ENV", "production")

import django

django.setup()

from django.conf import settings  # noqa: E402

from config.celery import app  # noqa: E402

# The apps' task modules, as a worker imports them when it starts: Celery finds them lazily
# (autodiscover_tasks), and without this every sweep below was "never registered".
app.loader.import_default_modules()

logger = logging.getLogger(__name__)


def lambda_handler(event=None, context=None) -> dict:
    results = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        # One sweep failing must not keep the others from running.
        try:
            results[name] = app.tasks[entry["task"]].apply().get(propagate=True)
        except Exception as exc:
            logger.exception("sweep %s failed", name)
            results[name] = f"failed: {exc!r}"
    return {"ran": results}
