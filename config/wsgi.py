"""WSGI entry point; SHOP_DEPLOYMENT picks the URLconf (all, monolith, legacy, hotpath)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
