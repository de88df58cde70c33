"""The legacy order backend's app: registers the calling sides' configured tokens after migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LegacyApiConfig(AppConfig):
    name = "legacy_api"
    verbose_name = "Legacy order backend"

    def ready(self) -> None:
        from legacy_api.tokens import tokens_register_configured

        post_migrate.connect(tokens_register_configured, sender=self, dispatch_uid="legacy_api_tokens")
