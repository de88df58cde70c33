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
