"""WSGI entry point of the monolith deployment (gunicorn config.wsgi_monolith)."""

import os

os.environ["SHOP_DEPLOYMENT"] = "monolith"

from config.wsgi import application

__all__ = ["application"]
