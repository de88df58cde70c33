"""Merchant admin of the hot path's sales: the allocations, with their window's state, the
forms that open, resize and limit a sale, and the actions that open, close and reconcile it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.validators import MinValueValidator
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from config.admin_base import LoadedVersionForm, ShopModelAdmin, short_datetime
from orders import sale_form, sale_route, sales
from orders.models import SaleAllocation, SaleState
from orders.sale_reconcile import sale_reconcile
from orders.sale_terms import per_order_limit_lowered
from shop.models import Product

STATE_PHRASES = {
    SaleState.DRAFT: "has not been opened",
    SaleState.OPEN: "is open",
    SaleState.CLOSING: "is closing",
    SaleState.CLOSED: "is closed",
}


def sale_state_html(allocation: SaleAllocation, now=None) -> str:
    """The sale's state, and under it, while it is open but outside its window, "starts 17:07"
    (the date too when not today) or "ended": the model's state says "open" from the opening
    until the sale is closed, which is before its start for a sale opened ahead of it, and for
    moments after its end until the beat closes it."""
    state = allocation.get_state_display()
    if allocation.state != SaleState.OPEN:
        return state
    now = now or timezone.now()
    window = allocation.window_state(now)
    if window == "not_started":
        starts = timezone.localtime(allocation.starts_at)
        when = date_format(starts, "H:i") if starts.date() == timezone.localtime(now).date() else short_datetime(starts)
        return format_html('{}<br><span class="nowrap">starts {}</span>', state, when)
    if window == "ended":
        return format_html('{}<br><span class="nowrap">ended</span>', state)
    return state


def stock_phrase(product: Product) -> str:
    """The product's stock of record in a merchant's words: "100 on hand", and what holds keep."""
    if not product.held:
        return f"{product.stock} on hand"
    return f"{product.stock} on hand, {product.held} of them held ({product.available} available)"


def over_stock_warning(allocation: SaleAllocation) -> str:
    """What a merchant is told on saving a draft that asks for more than the stock of record has."""
    return (
        f"{allocation.product}: the sale asks for {allocation.allocated} units, and the stock of record has "
        f"{stock_phrase(allocation.product)}. It is saved as a draft; opening it is refused until that much "
        "stock is available."
    )


def per_order_limit_field(field: forms.Field) -> None:
    """One message for a limit under 1, not the column's own "greater than or equal to 0" beside it."""
    field.validators = [v for v in field.validators if not isinstance(v, MinValueValidator)]
    field.validators.append(MinValueValidator(1, "At least 1 unit per order."))
    field.widget.attrs["min"] = 1


class SaleLimitForm(forms.ModelForm):
    """The change list's own edit of the limit per order: at least 1, at most the sale's units."""

    class Meta:
        model = SaleAllocation
        fields = ["per_order_limit"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        per_order_limit_field(self.fields["per_order_limit"])
        # Changed is what differs from what the list showed: a row left alone does not write
        # back a limit changed since on the sale's page.
        self.fields["per_order_limit"].show_hidden_initial = True

    def clean_per_order_limit(self):
        limit = self.cleaned_data["per_order_limit"]
        try:
            sales.sale_terms_check(units=self.instance.allocated, per_order_limit=limit)
        except sales.SaleRefused as exc:
            if exc.field == "per_order_limit":
                raise forms.ValidationError(exc.message)
        return limit


class SaleAllocationForm(LoadedVersionForm):
    """The sale as a merchant sets it. Validating the form takes the sale's step (open,
    resize, close: `orders.sales`), because the stock of record decides whether it can be
    taken: short stock is then a message on `allocated`, with nothing saved and nothing held.
    A page loaded before the sale was opened, resized, limited or closed elsewhere saves
    nothing (LoadedVersionForm): it would undo that change."""

    version_fields = ("state", "is_hot", "allocated", "per_order_limit", "starts_at", "ends_at", "hold_reference")

    class Meta:
        model = SaleAllocation
        fields = ["product", "is_hot", "allocated", "per_order_limit", "starts_at", "ends_at"]

    route = forms.BooleanField(
        required=False,
        initial=True,
        label="Send its pages to the hot path",
        help_text="When the sale opens, the edge route that sends the product's pages to the hot path "
        "is switched on, or added (as <code>manage.py sale open --route</code> does). Needs the permission to "
        "change the edge's routes.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sale: SaleAllocation | None = None
        # Whether this save opened the sale (it was not open before): then its route is sent.
        self.opened = False
        if "per_order_limit" in self.fields:  # a message on the field, not the table's constraint
            per_order_limit_field(self.fields["per_order_limit"])
        if self.instance.pk and "product" in self.fields:
            # A sale is its product's: another product is another sale, added on its own.
            self.fields["product"].disabled = True

    def clean(self):
        cleaned = super().clean()
        # A closed sale's units are its last opening's: reopening it counts afresh. A closing
        # one is refused whatever its units (its orders in flight), and told so by its update.
        counted = self.instance.pk and self.instance.state not in (SaleState.CLOSED, SaleState.CLOSING)
        taken = (self.instance.reserved + self.instance.sold) if counted else 0
        if cleaned.get("allocated") is not None and cleaned["allocated"] < taken:
            self.add_error("allocated", sales.taken_message(taken))
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The sale must end after it starts.")
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if self.errors or "allocated" not in self.fields:
            return
        data = self.cleaned_data
        was_open = bool(self.instance.pk) and self.instance.state == SaleState.OPEN
        try:
            self.sale = sale_form.sale_update(
                product=data.get("product") or self.instance.product,
                is_hot=data["is_hot"],
                allocated=data["allocated"],
                per_order_limit=data["per_order_limit"],
                starts_at=data.get("starts_at"),
                ends_at=data.get("ends_at"),
                # As the page's version was checked against it: the beat may close it since.
                seen_state=self.instance.state if self.instance.pk else None,
            )
        except sales.SaleRefused as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return
        self.opened = not was_open and self.sale.state == SaleState.OPEN


@admin.register(SaleAllocation)
class SaleAllocationAdmin(ShopModelAdmin):
    form = SaleAllocationForm
    # Short headers and one window column: every column fits a 1280 px screen beside the menu.
    list_display = [
        "product",
        "sale_state",
        "is_hot",
        "allocated_units",
        "reserved",
        "sold",
        "remaining",
        "per_order_limit",
        "window",
    ]
    # Opening, resizing and closing a sale move its hold: one sale at a time, on its own page.
    list_editable = ["per_order_limit"]
    list_filter = ["is_hot"]
    search_fields = ["product__title", "product__slug"]
    # A catalogue of thousands: the product is searched for, not picked from every one of them.
    autocomplete_fields = ["product"]
    readonly_fields = ["sale_state", "hold_reference", "reserved", "sold", "left_now", "updated_at"]
    actions = ["make_hot", "make_not_hot", "reconcile"]

    @admin.display(description="allocated", ordering="allocated")
    def allocated_units(self, obj: SaleAllocation) -> str:
        if not sales.draft_over_stock(obj):
            return str(obj.allocated)
        return format_html(
            '{}<br><span class="sale-over-stock" title="{}: opening it is refused">more than in stock</span>',
            obj.allocated,
            stock_phrase(obj.product),
        )

    @admin.display(description="left")
    def remaining(self, obj: SaleAllocation) -> int:
        return obj.remaining

    @admin.display(description="left")
    def left_now(self, obj: SaleAllocation) -> int | str:
        """The form's figure, as stored: after a refused save the form's sale carries the units
        that were refused, not the sale's."""
        stored = SaleAllocation.objects.filter(pk=obj.pk).first() if obj.pk else None
        return stored.remaining if stored is not None else "–"

    @admin.display(description="state", ordering="state")
    def sale_state(self, obj: SaleAllocation) -> str:
        return sale_state_html(obj)

    def get_changelist_form(self, request, **kwargs):
        return SaleLimitForm

    def has_delete_permission(self, request, obj=None) -> bool:
        # A sale under way holds units in the stock of record: it is closed, not deleted.
        if obj is not None and obj.state in (SaleState.OPEN, SaleState.CLOSING):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        # Its page opened by hand: told why, on the sale's own page, rather than "you may not".
        allocation = self.get_object(request, object_id)
        under_way = allocation is not None and allocation.state in (SaleState.OPEN, SaleState.CLOSING)
        # Only for one who may delete sales (has_delete_permission refuses this one for its state).
        if under_way and super().has_delete_permission(request):
            phrase = STATE_PHRASES[allocation.state]
            self.message_user(
                request, f"{allocation.product}: the sale {phrase}; close it first, then delete it.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:orders_saleallocation_change", args=[allocation.pk]))
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        under_way = [
            f"{allocation.product}: the sale {STATE_PHRASES[allocation.state]}; close it first"
            for allocation in objs
            if allocation.state in (SaleState.OPEN, SaleState.CLOSING)
        ]
        if under_way:
            # Refused for what the sales are doing, not for the merchant's permission: say that.
            perms_needed = set(perms_needed) - {str(SaleAllocation._meta.verbose_name)}
        return deleted, counts, perms_needed, [*protected, *under_way]

    @admin.display(description="sale window", ordering="starts_at")
    def window(self, obj: SaleAllocation) -> str:
        if not (obj.starts_at or obj.ends_at):
            return "from opening until closed"
        return format_html("{}<br>– {}", short_datetime(obj.starts_at) or "now", short_datetime(obj.ends_at) or "…")

    @admin.action(description="Turn the hot path on", permissions=["change"])
    def make_hot(self, request, queryset):
        # Each sale opens with its allocated units held in the stock of record, or says why not.
        for allocation in queryset.select_related("product"):
            try:
                sales.sale_open(
                    product=allocation.product,
                    units=allocation.allocated,
                    per_order_limit=allocation.per_order_limit,
                    starts_at=allocation.starts_at,
                    ends_at=allocation.ends_at,
                )
            except sales.SaleRefused as exc:
                self.message_user(request, f"{allocation.product}: {exc.message}", messages.ERROR)
            else:
                self.log_action(request, [allocation], f"Opened the sale: {allocation.allocated} units held.")
                self.message_user(request, f"{allocation.product}: sale open.", messages.SUCCESS)
                self._pages_to_sale(request, allocation.product)

    @admin.action(description="Turn the hot path off", permissions=["change"])
    def make_not_hot(self, request, queryset):
        # Closing releases what was not sold; a sale that was never opened just goes cold.
        for allocation in queryset.select_related("product"):
            try:
                if allocation.state == SaleState.OPEN:
                    closed = sales.sale_close(allocation=allocation)
                    self.log_action(request, [allocation], "Closed the sale.")
                    notes = " ".join(closed.closed_notes)
                    self.message_user(request, f"{allocation.product}: sale closed. {notes}".strip(), messages.SUCCESS)
                elif allocation.is_hot:
                    allocation.is_hot = False
                    allocation.save(update_fields=["is_hot", "updated_at"])
                    self.log_action(request, [allocation], "Turned the hot path off (not opened).")
                    self.message_user(request, f"{allocation.product}: not hot.", messages.SUCCESS)
                else:
                    phrase = STATE_PHRASES[allocation.state]
                    message = f"{allocation.product}: the hot path is off already (the sale {phrase})."
                    self.message_user(request, message)
            except sales.SaleRefused as exc:
                self.message_user(request, f"{allocation.product}: {exc.message}", messages.ERROR)

    @admin.action(description="Reconcile with the stock of record", permissions=["change"])
    def reconcile(self, request, queryset):
        for allocation in queryset.select_related("product"):
            checks = sale_reconcile(product=allocation.product)
            if not checks:
                phrase = STATE_PHRASES[allocation.state]
                self.message_user(request, f"{allocation.product}: nothing to reconcile (the sale {phrase}).")
            for check in checks:
                level = messages.SUCCESS if check.action == "in step" else messages.WARNING
                self.message_user(request, f"{allocation.product}: {check.figures()}: {check.action}", level)

    def _pages_to_sale(self, request, product: Product, *, send: bool = True) -> None:
        """After the sale opened: its product's pages sent to the hot path, or the merchant told
        they still go to the storefront, where only the units the sale does not hold are sold."""
        pattern = sale_route.sale_route_pattern(product)
        still = f"{product}: the sale is open, but its pages still go to the storefront"
        if not send:
            self.message_user(request, f"{still}: a route must send {pattern} to the hot path.", messages.WARNING)
            return
        if not all(request.user.has_perm(permission) for permission in sale_route.ROUTE_PERMISSIONS):
            self.message_user(
                request,
                f"{still}: someone who may change the edge's routes must send {pattern} to the hot path.",
                messages.WARNING,
            )
            return
        try:
            routed = sale_route.sale_route_on(product, actor=f"admin:{request.user.get_username()}")
        except sale_route.SaleRouteRefused as exc:
            self.message_user(request, f"{still}: {exc.message}", messages.ERROR)
            return
        self.message_user(request, f"{product}: its pages go to the hot path (route {routed.name}).", messages.SUCCESS)
        for warning in routed.warnings:
            self.message_user(request, f"{product}: route {routed.name}: {warning}", messages.WARNING)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Without the admin's transaction around the whole request: the sale's step, taken while
        # the form is validated, calls the legacy API over HTTP to move the hold, and no
        # transaction should stay open across a call to another service. On SQLite (the
        # embedded default) it would also hold the database's write lock, so the legacy API
        # could not write the hold until the request timed out. Each step of the sale makes
        # its own short transactions.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if getattr(form, "sale", None) is not None:
            # The sale's step was taken when the form was validated (the hold first): show it.
            obj.pk, obj._state.adding = form.sale.pk, False
            obj.refresh_from_db()
            # Closed by the form: what else the close did (its routes switched off), as the
            # action that closes a sale says it.
            for note in getattr(form.sale, "closed_notes", None) or ():
                self.message_user(request, f"{obj.product}: {note}", messages.SUCCESS)
            if form.opened:
                self._pages_to_sale(request, obj.product, send=form.cleaned_data.get("route", True))
        elif change:
            # Only the merchant's fields: reserved and sold move under the buyers' feet, and
            # writing back the values read with the form would undo their orders.
            obj.save(update_fields=[f for f in form.changed_data if f != "product"] + ["updated_at"])
        else:
            obj.save()
        if sales.draft_over_stock(obj):
            # Kept (stock may arrive before the sale), but the merchant hears now what the
            # opening would say later.
            self.message_user(request, over_stock_warning(obj), messages.WARNING)
        lowered = per_order_limit_lowered(obj)
        if lowered:
            self.message_user(request, f"{obj.product}: {lowered}", messages.WARNING)
