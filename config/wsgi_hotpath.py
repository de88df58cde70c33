"""WSGI entry point of the hotpath deployment (gunicorn config.wsgi_hotpath)."""

import os

os.environ["SHOP_DEPLOYMENT"] = "hotpath"

from config.wsgi import application

__all__ = ["application"]
