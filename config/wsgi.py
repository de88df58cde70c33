"""WSGI entry point; SHOP_DEPLOYMENT picks the URLconf (all, monolith, legacy, hotpath)."""

import os

import django
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
# Before the application loads its middleware: tracing adds its own. gunicorn imports this
# in each worker, after fork (with --preload, its post_fork hook does it again, harmlessly).
from tracing.setup import tracing_init  # noqa: E402 - needs the apps set up

tracing_init()
application = get_wsgi_application()
