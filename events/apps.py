"""The unified log: every change worth telling, in commit order, for consumers and the bus."""

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Unified log"
    default_auto_field = "django.db.models.BigAutoField"
