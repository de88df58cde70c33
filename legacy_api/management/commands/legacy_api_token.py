"""`manage.py legacy_api_token CALLER`: prints a working bearer token for that caller."""

from django.core.management.base import BaseCommand, CommandError

from legacy_api.tokens import BadCaller, token_for_caller


class Command(BaseCommand):
    help = "Print a working legacy API token for CALLER (storefront, hotpath, merchant), making one if needed."

    def add_arguments(self, parser):
        parser.add_argument("caller")

    def handle(self, *args, caller: str, **options):
        try:
            token = token_for_caller(caller=caller)
        except BadCaller as exc:
            raise CommandError(str(exc))
        self.stdout.write(token)
