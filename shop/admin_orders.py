"""The merchant admin's read-only views of what the storefront's orders left: the receipts of
placed orders (the order of record lives in the legacy order API), the checkouts still in doubt
and the buyers' order emails."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin

from config.admin_base import ReadOnlyAdmin
from shop.models import OrderEmail, PendingCheckout, PlacedOrder
from shop.templatetags.shop_tags import money


@admin.register(PlacedOrder)
class PlacedOrderAdmin(ReadOnlyAdmin):
    """Receipts only: the order of record lives in the legacy order API."""

    list_display = ["number", "placed_at", "name", "email", "total_display", "processing_ms", "customer"]
    list_select_related = ["customer"]
    search_fields = ["number", "email", "name", "reference"]
    # Every receipt the shop ever gave: a second count of all of them on each page is left out.
    show_full_result_count = False
    date_hierarchy = "placed_at"
    list_filter = ["placed_at"]

    @admin.display(description="Total", ordering="total_cents")
    def total_display(self, obj: PlacedOrder) -> str:
        return money(obj.total_cents)


@admin.register(PendingCheckout)
class PendingCheckoutAdmin(ReadOnlyAdmin):
    """Checkouts sent to the legacy API that no answer has settled yet: the sweep looks each one
    up (shop.checkout_sweep); one that stays here is one the legacy API could not tell about."""

    list_display = ["reference", "started_at", "tries_count", "tries_open", "looks", "look_after"]
    search_fields = ["reference"]
    list_filter = ["started_at"]

    @admin.display(description="Tries")
    def tries_count(self, obj: PendingCheckout) -> int:
        return len(obj.tries)


class ConfirmationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting to be sent"), ("given_up", "Given up"), ("sent", "Sent")]

    def queryset(self, request, queryset):
        most = settings.SHOP_CONFIRMATION_MAX_ATTEMPTS
        match self.value():
            case "waiting":
                return queryset.filter(sent_at__isnull=True, attempts__lt=most)
            case "given_up":
                return queryset.filter(sent_at__isnull=True, attempts__gte=most)
            case "sent":
                return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OrderEmail)
class OrderEmailAdmin(ReadOnlyAdmin):
    """Buyers' order emails (confirmed, or not placed after all): one the mail server refused is
    tried again by beat's sweep (shop.confirmations), and one it kept refusing is left here,
    given up, for a person to look into (the buyer still finds the order by its lookup)."""

    list_display = [
        "number",
        "kind",
        "email",
        "created_at",
        "attempts",
        "sent_at",
        "covered_by",
        "held_until",
        "last_error",
    ]
    search_fields = ["number", "email"]
    list_filter = [ConfirmationStateFilter, "kind", "created_at"]
