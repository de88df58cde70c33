"""The Celery app shared by the hot-path workers and the beat sweeper. Tracing starts in each
worker process after fork (and in the main process, which publishes too) and sends its last
spans when a process is recycled or stops."""

import os
import warnings

from celery import Celery, signals
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if os.environ.get("DJANGO_ENV", "development") == "development":
    # Developers' machines and containers often run as root; Celery's advice against that is
    # for production workers, where it still shows.
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("shop", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery's Django fixup closes the database connection before and after every task unless told
# how many tasks may share one: a new PostgreSQL connection per order cost the worker and the
# database more than the order's own queries. A task keeps its connection the way a request
# does instead (below); the fixup only recycles it after this many tasks.
app.conf.CELERY_DB_REUSE_MAX = 1000


@signals.task_prerun.connect
@signals.task_postrun.connect
def connections_tidy(task=None, **kwargs):
    """What Django does around each request: a connection past CONN_MAX_AGE, or broken by an
    error, is closed, and the next use of a kept one is health-checked (CONN_HEALTH_CHECKS).
    With CONN_MAX_AGE=0 (the embedded default) each task has a connection of its own, as before.
    Not for a task run eagerly, inside its caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
@signals.worker_process_init.connect
def tracing_start(**kwargs):
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from tracing.setup import tracing_init

    tracing_init(service="worker", django=False)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def tracing_stop(**kwargs):
    from tracing.setup import tracing_shutdown

    tracing_shutdown()
