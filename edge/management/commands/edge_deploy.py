"""Deploy the routes to AWS: Lambda@Edge version, distribution behaviours, mini-site, invalidation."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.core.management.base import BaseCommand, CommandError

from edge.deploy import DeployRefused, edge_deploy


class Command(BaseCommand):
    help = "Deploy the edge routes with boto3 (endpoint from AWS_ENDPOINT_URL). --dry-run prints the difference."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; change nothing.")
        parser.add_argument(
            "--drop-origin-guards",
            action="store_true",
            help="Take the origins' secret header (EDGE_ORIGIN_SECRET unset) or the bucket's origin access "
            "control (EDGE_MINISITE_OAC_ID unset) off the live distribution, which is refused without it.",
        )

    def handle(self, *args, dry_run, drop_origin_guards, **options):
        try:
            edge_deploy(dry_run=dry_run, say=self.stdout.write, drop_origin_guards=drop_origin_guards)
        except DeployRefused as exc:
            raise CommandError(f"Nothing deployed: {exc}")
        except (ClientError, BotoCoreError) as exc:
            raise CommandError(f"Deploy failed: {exc}")
