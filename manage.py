#!/usr/bin/env python
"""Django's command-line utility for the shop."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # The settings' refusals (a weak SECRET_KEY in production, a variable that is not a
        # number...) name what to set: one line, not a traceback through Django's internals.
        sys.stderr.write(f"manage.py: {exc}\n")
        sys.exit(1)
