"""The Celery app shared by the hot-path workers and the beat sweeper."""

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if os.environ.get("DJANGO_ENV", "development") == "development":
    # Developers' machines and containers often run as root; Celery's advice against that is
    # for production workers, where it still shows.
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("shop", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
