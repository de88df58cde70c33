"""Merchant admin of the hot path: sale allocations, hot orders with their history, dead
letters with redrive, and a live view of the queue."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse

from config.admin_base import ShopModelAdmin
from orders import placement, selectors
from orders.models import DeadLetter, HotOrder, OrderStage, OrderStageEvent, SaleAllocation


class SaleAllocationForm(forms.ModelForm):
    class Meta:
        model = SaleAllocation
        fields = ["product", "is_hot", "allocated", "per_order_limit", "starts_at", "ends_at"]

    def clean(self):
        cleaned = super().clean()
        taken = (self.instance.reserved + self.instance.sold) if self.instance.pk else 0
        if cleaned.get("allocated") is not None and cleaned["allocated"] < taken:
            self.add_error("allocated", f"At least {taken}: that many are already reserved or sold.")
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The sale must end after it starts.")
        return cleaned


@admin.register(SaleAllocation)
class SaleAllocationAdmin(ShopModelAdmin):
    form = SaleAllocationForm
    list_display = [
        "product",
        "is_hot",
        "allocated",
        "reserved",
        "sold",
        "remaining",
        "per_order_limit",
        "starts_at",
        "ends_at",
    ]
    list_editable = ["is_hot", "allocated", "per_order_limit"]
    list_filter = ["is_hot"]
    search_fields = ["product__title", "product__slug"]
    readonly_fields = ["reserved", "sold", "remaining", "updated_at"]
    actions = ["make_hot", "make_not_hot"]

    @admin.display(description="remaining")
    def remaining(self, obj: SaleAllocation) -> int:
        return obj.remaining

    @admin.action(description="Turn the hot path on", permissions=["change"])
    def make_hot(self, request, queryset):
        for allocation in queryset:  # save() so the cached product page is refreshed
            allocation.is_hot = True
            allocation.save(update_fields=["is_hot", "updated_at"])

    @admin.action(description="Turn the hot path off", permissions=["change"])
    def make_not_hot(self, request, queryset):
        for allocation in queryset:
            allocation.is_hot = False
            allocation.save(update_fields=["is_hot", "updated_at"])

    def save_model(self, request, obj, form, change):
        if change:
            # Only the merchant's fields: reserved and sold move under the buyers' feet, and
            # writing back the values read with the form would undo their orders.
            obj.save(update_fields=[f for f in form.changed_data if f != "product"] + ["updated_at"])
        else:
            obj.save()


class StageEventInline(admin.TabularInline):
    model = OrderStageEvent
    extra = 0
    can_delete = False
    fields = ["at", "stage", "detail"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HotOrder)
class HotOrderAdmin(ShopModelAdmin):
    list_display = [
        "number",
        "product",
        "quantity",
        "status",
        "stage",
        "customer_email",
        "card",
        "attempts",
        "legacy_number",
        "created_at",
    ]
    list_filter = ["stage", "status", "product", "reservation"]
    search_fields = ["number", "customer_email", "customer_name", "legacy_number", "idempotency_key"]
    date_hierarchy = "created_at"
    # The card number is never shown: only its last four digits.
    exclude = ["card_sealed", "token", "fingerprint"]
    readonly_fields = [
        "number",
        "product",
        "quantity",
        "unit_price_cents",
        "customer_name",
        "customer_email",
        "card",
        "status",
        "stage",
        "reservation",
        "reserved_until",
        "legacy_order_id",
        "legacy_number",
        "attempts",
        "last_error",
        "client_ip",
        "idempotency_key",
        "created_at",
        "completed_at",
    ]
    inlines = [StageEventInline]
    actions = ["redrive"]
    list_select_related = ["product"]

    @admin.display(description="card")
    def card(self, obj: HotOrder) -> str:
        return obj.card_masked

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Redrive the selected dead-lettered orders", permissions=["change"])
    def redrive(self, request, queryset):
        done = sum(
            placement.order_redrive(order_id=pk, user=request.user)
            for pk in queryset.filter(stage=OrderStage.DEAD_LETTERED).values_list("pk", flat=True)
        )
        self.message_user(request, f"{done} order(s) queued again.", messages.SUCCESS)

    def get_urls(self):
        live = path("live/", self.permission_view(self.live_view, "view"), name="orders_hotorder_live")
        return [live, *super().get_urls()]

    def live_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "title": "Hot path — live",
            "stats": selectors.queue_stats(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/live.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "live_url": reverse("admin:orders_hotorder_live")}
        return super().changelist_view(request, extra_context)


@admin.register(DeadLetter)
class DeadLetterAdmin(ShopModelAdmin):
    list_display = ["order", "product", "error_short", "attempts", "created_at", "redriven_at", "redriven_by"]
    list_filter = [("redriven_at", admin.EmptyFieldListFilter), "order__product"]
    search_fields = ["order__number", "order__customer_email", "error"]
    readonly_fields = ["order", "error", "attempts", "created_at", "redriven_at", "redriven_by"]
    actions = ["redrive"]
    list_select_related = ["order__product", "redriven_by"]

    @admin.display(description="product")
    def product(self, obj: DeadLetter):
        return obj.order.product

    @admin.display(description="last error")
    def error_short(self, obj: DeadLetter) -> str:
        return obj.error[:120]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redrive (queue the orders again)", permissions=["change"])
    def redrive(self, request, queryset):
        order_ids = set(queryset.filter(redriven_at__isnull=True).values_list("order_id", flat=True))
        done = sum(placement.order_redrive(order_id=pk, user=request.user) for pk in order_ids)
        self.message_user(request, f"{done} order(s) queued again.", messages.SUCCESS)
