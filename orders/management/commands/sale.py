"""`manage.py sale`: open a sale (its units held in the stock of record), follow it, close it,
and reconcile it with the legacy API."""

from __future__ import annotations

import json
from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from config.commands import when_option
from orders.models import SaleAllocation, SaleState
from orders.sale_reconcile import sale_reconcile, sale_status
from orders.sale_route import SaleRouteRefused, sale_route_on
from orders.sale_terms import SaleAlreadyOpen, per_order_limit_lowered
from orders.sales import SaleRefused, sale_close, sale_open
from orders.selectors import dead_letters_note
from shop.models import Product

# The command's option for each field a refusal names.
OPTIONS = {"allocated": "--units", "per_order_limit": "--per-order", "starts_at": "--starts", "ends_at": "--ends"}


def _product(slug: str) -> Product:
    product = Product.objects.select_related("category").filter(slug=slug).first()
    if product is None:
        raise CommandError(f"No product {slug!r}.")
    return product


def _refused(exc: SaleRefused) -> CommandError:
    option = OPTIONS.get(exc.field or "")
    return CommandError(f"{option}: {exc.message}" if option else exc.message)


def _window(starts_at: str | None, ends_at: str | None) -> str:
    """The sale's window as `sale status --json` gives it (ISO, or None for open-ended)."""
    return f"from {starts_at or 'opening'} until {ends_at or 'closed'}"


def _no_open_sale(product: Product | None) -> str:
    """What `sale reconcile` says when it finds no open or closing sale to true up: not an
    error (there is nothing to repair), but never taken for a sale found in step."""
    if product is None:
        return "No open sales."
    state = SaleAllocation.objects.filter(product=product).values_list("state", flat=True).first()
    if state is None:
        return f"No sale of {product.slug}: no hold to reconcile."
    return f"The sale of {product.slug} is {SaleState(state).label}: no hold to reconcile."


def _figure(value) -> str:
    return "?" if value is None else str(value)


def _sale_figures(f: dict) -> str:
    """The sale's part of a `sale status` line: "no sale" for a product never put on sale, and
    "no hold" for a sale that has none (a draft), "?" being a hold that could not be read."""
    if f["state"] is None:
        return "no sale"
    hold = f"hold {_figure(f['hold'])} ({f['hold_reference']})" if f["hold_reference"] else "no hold"
    return (
        f"{f['state']}, allocated {f['allocated']}, reserved {f['reserved']}, "
        f"sold {f['sold']}, remaining {f['remaining']}, {hold}"
    )


class Command(BaseCommand):
    help = "Open, follow, close and reconcile a product's sale on the hot path."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        open_ = sub.add_parser("open", help="Hold the units in the stock of record and open the sale.")
        open_.add_argument("product", help="the product's slug")
        open_.add_argument("--units", type=int, required=True, help="units on sale (held at once)")
        open_.add_argument(
            "--per-order", type=int, help="most units one order may take (default: the last sale's, or 2 at first)"
        )
        open_.add_argument("--starts", help="ISO date and time; default now")
        open_.add_argument("--ends", help="ISO date and time; default until closed")
        open_.add_argument("--route", action="store_true", help="also send the product's URIs to the hot path")
        status = sub.add_parser("status", help="The sale's figures beside the stock of record's.")
        status.add_argument("product", nargs="?")
        status.add_argument("--json", action="store_true")
        close = sub.add_parser("close", help="Release the unsold units; switch the hot path and its routes off.")
        close.add_argument("product")
        reconcile = sub.add_parser(
            "reconcile", help="True the holds up with the sales (repairs what is safe), release holds no sale owns."
        )
        reconcile.add_argument("product", nargs="?")
        reconcile.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(options)
        except SaleRefused as exc:
            raise _refused(exc)

    def do_open(self, options) -> None:
        product = _product(options["product"])
        terms = {
            "units": options["units"],
            "per_order_limit": options["per_order"],
            "starts_at": when_option(options["starts"], "--starts"),
            "ends_at": when_option(options["ends"], "--ends"),
        }
        try:
            allocation = sale_open(product=product, **terms)
        except SaleAlreadyOpen as exc:
            if not (options["route"] and _same_terms(exc.allocation, **terms)):
                raise
            # The same command again, after one stopped between the opening and its route
            # (a closed terminal, a broken pipe): it finishes the route, and changes nothing else.
            self.stdout.write(f"Sale of {product.slug} already open with these terms; nothing else changed.")
            self.route_on(product)
            return
        self.stdout.write(
            f"Sale of {product.slug} open: {allocation.allocated} unit{pluralize(allocation.allocated)} held as "
            f"{allocation.hold_reference}, "
            f"{allocation.per_order_limit} per order."
        )
        starts_at, ends_at = (
            v.astimezone(UTC).isoformat() if v else None for v in (allocation.starts_at, allocation.ends_at)
        )
        self.stdout.write(f"On sale {_window(starts_at, ends_at)}.")
        lowered = per_order_limit_lowered(allocation)
        if lowered:
            self.stderr.write(lowered)
        if options["route"]:
            self.route_on(product)

    def do_close(self, options) -> None:
        product = _product(options["product"])
        allocation = SaleAllocation.objects.filter(product=product, state=SaleState.OPEN).first()
        if allocation is None:
            raise CommandError(f"The sale of {product.slug} is not open.")
        allocation = sale_close(allocation=allocation)
        owed = allocation.allocated - allocation.sold
        if owed:
            rest = f"{owed} still held for orders in flight{dead_letters_note(product_id=product.pk)}."
        else:
            rest = "the rest released." if allocation.state == SaleState.CLOSED else "the rest not released yet."
        self.stdout.write(f"Sale of {product.slug} closed: {allocation.sold} sold, {rest}")
        for note in allocation.closed_notes:
            self.stdout.write(note)

    def do_status(self, options) -> None:
        if options["product"]:
            figures = [sale_status(product=_product(options["product"]))]
        else:
            products = Product.objects.filter(sale_allocation__isnull=False).order_by("slug")
            figures = [sale_status(product=product) for product in products]
        if options["json"]:
            self.stdout.write(json.dumps(figures[0] if options["product"] else figures, indent=2))
        else:
            self.status_print(figures)
        unread = [f["product"] for f in figures if "error" in f]
        if unread:
            # A script must not take figures the stock of record did not give for the truth.
            raise CommandError(f"Not read: {', '.join(unread)} (the stock of record could not be read); run it again.")

    def status_print(self, figures) -> None:
        if not figures:
            self.stdout.write("No sales.")
        for f in figures:
            self.stdout.write(
                f"{f['product']}: {_sale_figures(f)}"
                + f"; stock on hand {_figure(f['on_hand'])}, held {_figure(f['held'])}, "
                f"available {_figure(f['available'])}"
                + (f"; on sale {_window(f['starts_at'], f['ends_at'])}" if f["state"] is not None else "")
                + (f" [{f['error']}]" if "error" in f else "")
            )

    def do_reconcile(self, options) -> None:
        product = _product(options["product"]) if options["product"] else None
        checks = sale_reconcile(product=product)
        if options["json"]:
            self.stdout.write(json.dumps([check.as_dict() for check in checks], indent=2))
        else:
            self.reconcile_print(checks, product)
        unchecked = [c.product for c in checks if not c.checked and not c.orphan]
        if unchecked:
            # A script (or a cron job) must not take a sale it could not check for one in step.
            raise CommandError(f"Not reconciled: {', '.join(unchecked)} (the hold could not be read); run it again.")
        if any(not c.checked for c in checks):
            # Nor a pass that could not look for the holds no sale owns, whose units stay away.
            raise CommandError("Not reconciled: the holds no sale owns could not be listed; run it again.")

    def reconcile_print(self, checks, product: Product | None) -> None:
        if all(c.orphan for c in checks):
            self.stdout.write(_no_open_sale(product))
        for c in checks:
            if c.orphan and not c.checked:
                self.stdout.write(f"{c.product}: {c.action}" if c.product else c.action.capitalize())
                continue
            if c.orphan:
                self.stdout.write(f"{c.product}: hold {c.hold_reference}, owned by no sale: {c.action}")
                continue
            self.stdout.write(f"{c.product}: {c.figures()}, {c.in_flight} in flight: {c.action}")

    def route_on(self, product: Product) -> None:
        """Sends the product's pages to the hot path (orders.sale_route)."""
        try:
            routed = sale_route_on(product, actor="sale", stdout=self.stdout)
        except SaleRouteRefused as exc:
            raise CommandError(f"The sale is open, but {exc.message}") from None
        for warning in routed.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))


def _same_terms(allocation: SaleAllocation, *, units, per_order_limit, starts_at, ends_at) -> bool:
    """Whether an open sale is the one these options would open (a limit left out: any)."""
    return (
        allocation.allocated == units
        and per_order_limit in (None, allocation.per_order_limit)
        and (allocation.starts_at, allocation.ends_at) == (starts_at, ends_at)
    )
