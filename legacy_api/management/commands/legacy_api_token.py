"""`manage.py legacy_api_token CALLER`: prints a working bearer token for that caller."""

from django.conf import settings
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
        if token != settings.LEGACY_API_TOKENS.get(caller):
            # A new token works for whoever is given it: the processes calling as this caller
            # still send theirs (none, refused or revoked), and each run makes another.
            variable = f"LEGACY_API_TOKEN_{caller.upper()}"
            self.stderr.write(
                f"A new token: the one {caller}'s processes are configured with ({variable}) is unset, refused or "
                f"revoked. Set {variable} to it where they run, and where the legacy API runs."
            )
