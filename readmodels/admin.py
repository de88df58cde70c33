"""The merchant's side of reorders: suppliers, and the purchase orders drafted when stock runs
low, to confirm, cancel or receive (receiving restocks through the legacy API)."""

from __future__ import annotations

from django.contrib import admin, messages

from config.admin_base import ReadOnlyAdmin, ShopModelAdmin
from legacy_client import LegacyRefused, LegacyUnavailable
from readmodels.models import PurchaseOrder
from readmodels.reorders import (
    PurchaseRefused,
    purchase_order_cancel,
    purchase_order_confirm,
    purchase_order_receive,
)
from shop.models import Supplier


@admin.register(Supplier)
class SupplierAdmin(ShopModelAdmin):
    list_display = ["name", "email", "lead_time_days"]
    search_fields = ["name", "email"]


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(ReadOnlyAdmin):
    list_display = ["reference", "product", "supplier", "quantity", "status", "available_then", "created_at"]
    list_filter = ["status", "supplier"]
    search_fields = ["reference", "product__title", "supplier__name"]
    list_select_related = ["product", "supplier"]
    readonly_fields = [
        "reference",
        "product",
        "supplier",
        "quantity",
        "status",
        "available_then",
        "reorder_point",
        "event_position",
        "decided_by",
        "created_at",
        "updated_at",
    ]
    actions = ["confirm", "cancel", "receive"]

    def has_change_permission(self, request, obj=None):
        # Deciding on a draft is a change; the record itself is never edited by hand.
        return request.user.has_perm("readmodels.change_purchaseorder")

    def _each(self, request, queryset, step, done: str) -> None:
        count = 0
        for order in queryset:
            try:
                step(order_id=order.pk, user=request.user)
                count += 1
            except PurchaseRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
            except (LegacyRefused, LegacyUnavailable) as exc:
                self.message_user(request, f"{order.reference} not received: {exc}", messages.ERROR)
        if count:
            self.message_user(request, f"{count} purchase order(s) {done}.", messages.SUCCESS)

    @admin.action(description="Confirm (send to the supplier)", permissions=["change"])
    def confirm(self, request, queryset):
        self._each(request, queryset, purchase_order_confirm, "confirmed")

    @admin.action(description="Cancel", permissions=["change"])
    def cancel(self, request, queryset):
        self._each(request, queryset, purchase_order_cancel, "cancelled")

    @admin.action(description="Receive (restock through the legacy API)", permissions=["change"])
    def receive(self, request, queryset):
        self._each(request, queryset, purchase_order_receive, "received")
