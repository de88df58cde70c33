"""WSGI entry point of the legacy deployment (gunicorn config.wsgi_legacy)."""

import os

os.environ["SHOP_DEPLOYMENT"] = "legacy"

from config.wsgi import application

__all__ = ["application"]
