"""WSGI entry point; SHOP_DEPLOYMENT picks the URLconf (all, monolith, legacy, hotpath).

Each server process imports it after it starts (gunicorn's workers after fork, granian's in
each worker, a Lambda at its start), and it readies the process for its first request."""

import multiprocessing.util
import os

import django
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
# Before the application loads its middleware: tracing adds its own. gunicorn imports this
# in each worker, after fork (with --preload, its post_fork hook does it again, harmlessly).
from config.warm import process_warm  # noqa: E402 - needs the apps set up
from tracing.setup import tracing_init, tracing_shutdown  # noqa: E402

tracing_init()
application = get_wsgi_application()
# Templates, URLs and validators built, and what is loaded kept out of full collections
# (config.warm), before the first request rather than during it.
process_warm()
# The process's last spans are sent as it exits, whatever its server: multiprocessing runs its
# finalizers at a normal exit (gunicorn's workers) and as its children end, without atexit
# (granian's workers).
multiprocessing.util.Finalize(None, tracing_shutdown, exitpriority=10)
