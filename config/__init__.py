"""Project configuration: settings, URLconfs per deployment, WSGI/Lambda entry points, Celery."""

from .celery import app as celery_app

__all__ = ["celery_app"]
