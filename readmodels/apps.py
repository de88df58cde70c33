"""Read models fed by the unified log: inventory, sales per minute, tallies, vendor reorders,
and the merchant's live sale dashboard."""

from django.apps import AppConfig


class ReadModelsConfig(AppConfig):
    name = "readmodels"
    verbose_name = "During the sale"
