"""Manage the edge routes: add, list, enable, disable, remove (each change previewed and audited)."""

from __future__ import annotations

import getpass

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.commands import when_option
from edge import selectors, services
from edge.models import Origin, Route


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        # A refusal of the whole route (the behaviours' quota) is said as it is, without the
        # "__all__" Django files it under.
        return "; ".join(
            " ".join(msgs) if field == NON_FIELD_ERRORS else f"{field}: {' '.join(msgs)}"
            for field, msgs in exc.message_dict.items()
        )
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Add, list, enable, disable or remove edge routes. Every change prints its preview and is audited."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a route (disabled unless --enable).")
        add.add_argument("name")
        add.add_argument("pattern", help="CloudFront path pattern, e.g. /shop/rods/muskie-casting-rod/*")
        add.add_argument("--origin", help="monolith, hotpath, legacy-api, minisite, ...")
        add.add_argument("--redirect", default="", help="Redirect to this URL instead of an origin.")
        add.add_argument("--status", type=int, choices=[301, 302, 307, 308], help="Redirect status (default 302).")
        add.add_argument("--position", type=int, help="Order (lower first); default after the last route.")
        add.add_argument("--window-start")
        add.add_argument("--window-end")
        add.add_argument("--canary", type=int, help="Percentage of buyers (0-100).")
        add.add_argument("--enable", action="store_true", help="Switch the route on at once.")
        sub.add_parser("list", help="List the routes in order.")
        changes = {
            "enable": "Switch a route on, or move it too (--pattern, --origin): its preview, then the change.",
            "disable": "Switch a route off: its preview, then the change.",
            "remove": "Delete a route: its preview, then the change.",
        }
        for action, help_line in changes.items():
            p = sub.add_parser(action, help=help_line)
            p.add_argument("name")
            if action == "enable":
                p.add_argument("--pattern", help="Also set the route's path pattern, in the same audited change.")
                p.add_argument(
                    "--origin", help="Also send it to this origin (a redirect it had is dropped), in the same change."
                )
        for p in (add, *(sub.choices[action] for action in changes)):  # `list` changes nothing
            p.add_argument("--dry-run", action="store_true", help="Print the preview; change nothing.")
            p.add_argument("--actor", default=None, help="Who makes the change (default: the OS user).")

    def handle(self, *args, action, **options):
        actor = options.get("actor") or f"cli:{getpass.getuser()}"
        if action == "list":
            return self.list_routes()
        try:
            if action == "add":
                self.add(actor, options)
            else:
                route = Route.objects.select_related("origin").filter(name=options["name"]).first()
                if route is None:
                    raise CommandError(f"No route named {options['name']!r}.")
                if action == "remove":
                    self.preview(removed=route, dry_run=options["dry_run"])
                    if not options["dry_run"]:
                        services.route_delete(actor=actor, route=route)
                        self.stdout.write(f"Removed route {route.name}.")
                else:
                    route.enabled = action == "enable"
                    if action == "enable" and options.get("pattern"):
                        route.pattern = options["pattern"]
                    if action == "enable" and options.get("origin"):
                        route.origin = Origin.objects.filter(name=options["origin"]).first()
                        if route.origin is None:
                            raise CommandError(f"No origin named {options['origin']!r}.")
                        route.redirect_url, route.redirect_status = "", None
                    self.preview(candidate=route, dry_run=options["dry_run"])
                    if options["dry_run"]:
                        self.warn(selectors.route_warnings(route))
                    else:
                        self.warn(services.route_save(actor=actor, route=route))
                        self.stdout.write(f"Route {route.name} {action}d.")
        except ValidationError as exc:
            raise CommandError(_messages(exc))

    def add(self, actor: str, options: dict) -> None:
        fields = {
            "position": options["position"],
            "enabled": options["enable"],
            "window_start": when_option(options["window_start"], "--window-start"),
            "window_end": when_option(options["window_end"], "--window-end"),
            "canary_percent": options["canary"],
            "redirect_url": options["redirect"],
            "redirect_status": options["status"],
        }
        route = services.route_prepare(
            name=options["name"], pattern=options["pattern"], origin=options["origin"], **fields
        )
        self.preview(candidate=route, dry_run=options["dry_run"])
        if options["dry_run"]:
            self.warn(selectors.route_warnings(route))
            return
        route, warnings = services.route_create(
            actor=actor, name=options["name"], pattern=options["pattern"], origin=options["origin"], **fields
        )
        self.warn(warnings)
        self.stdout.write(f"Added route {route.name} ({'enabled' if route.enabled else 'disabled'}).")

    def preview(self, *, candidate=None, removed=None, dry_run: bool) -> None:
        diff = services.route_change_preview(candidate=candidate, removed=removed)
        self.stdout.write(diff or "No change to the compiled configuration.")
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")

    def warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))

    def list_routes(self) -> None:
        routes = Route.objects.select_related("origin").order_by("position", "pk")
        if not routes:
            self.stdout.write("No routes: everything goes to the default origin.")
        # Columns as wide as their longest value (a sale's route is named after its product).
        name_width = max([24, *(len(r.name) for r in routes)])
        pattern_width = max([40, *(len(r.pattern) for r in routes)])
        for r in routes:
            target = f"redirect {r.redirect_status} {r.redirect_url}" if r.redirect_url else f"-> {r.origin}"
            extra = []
            if r.window_start or r.window_end:
                extra.append(f"window {r.window_start or '…'} .. {r.window_end or '…'}")
            if r.canary_percent is not None:
                extra.append(f"canary {r.canary_percent}%")
            state = "on " if r.enabled else "off"
            self.stdout.write(
                f"{r.position:>5} {state} {r.name:<{name_width}} {r.pattern:<{pattern_width}} {target} "
                f"{' '.join(extra)}".rstrip()
            )
