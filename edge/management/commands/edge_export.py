"""Export the routes to CloudFront, Lambda@Edge, CloudFormation, nginx and the mini-site."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from edge.exporters.export import TARGETS, export
from edge.exporters.nginx import Unexportable

# What `listen` takes here: a port, or an address and a port (IPv4, [IPv6] or a host name).
LISTEN = re.compile(r"^(?:(?:[0-9.]+|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$")


def listen_check(value: str) -> str:
    match = LISTEN.match(value)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise CommandError(
            f"--nginx-listen: {value!r} is not a port or HOST:PORT (e.g. 80, 127.0.0.1:8080, [::1]:8080)."
        )
    return value


class Command(BaseCommand):
    help = "Compile the edge routes for one target (or all) into --out DIR."

    def add_arguments(self, parser):
        parser.add_argument("--target", choices=[*TARGETS, "all"], required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--nginx-listen", default="80", help="nginx `listen` value, e.g. 127.0.0.1:8080.")

    def handle(self, *args, target, out, nginx_listen, **options):
        targets = list(TARGETS) if target == "all" else [target]
        if "nginx" in targets:
            listen_check(nginx_listen)
        try:
            written = export(targets, out, nginx_listen=nginx_listen)
        except OSError as exc:  # --out a file, or somewhere this user cannot write
            raise CommandError(f"--out {out}: {exc.strerror or exc}")
        except Unexportable as exc:  # a row saved before the admin checked it
            raise CommandError(f"cannot export: {exc}")
        for path in written:
            self.stdout.write(str(path))
