"""Merchant admin of the hot path: hot orders with their history, dead letters with redrive
and cancel, and a live view of the queue; the sales' is orders.admin_sales."""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from config.admin_base import ShopModelAdmin, short_datetime
from orders import (
    admin_sales,  # noqa: F401 - registers the sales' admin
    dead_letters,
    selectors,
)
from orders.models import DeadLetter, HotOrder, OrderStage, OrderStageEvent
from shop.templatetags.shop_tags import money

# The live queue view reloads itself this often.
LIVE_REFRESH_SECONDS = 5


def orders_cancel(model_admin: admin.ModelAdmin, request, order_ids) -> None:
    """Cancels each dead-lettered order (dead_letters.order_cancel) and says what came of each:
    cancelled, completed after all (the legacy API had it), or refused and why."""
    for order in HotOrder.objects.filter(pk__in=order_ids).order_by("pk"):
        try:
            ended = dead_letters.order_cancel(order_id=order.pk, user=request.user)
        except dead_letters.CancelRefused as exc:
            model_admin.message_user(request, f"{order}: not cancelled: {exc}.", messages.ERROR)
            continue
        if ended.stage == OrderStage.CANCELLED:
            message = f"{order}: cancelled; its {ended.quantity} unit(s) released and nothing charged."
            model_admin.message_user(request, message, messages.SUCCESS)
        else:
            message = (
                f"{order}: not cancelled: the order backend had placed it after all (legacy order "
                f"{ended.legacy_number}), so it is completed and the buyer emailed."
            )
            model_admin.message_user(request, message, messages.WARNING)


def redriven_say(model_admin: admin.ModelAdmin, request, done: int, *, none_why: str) -> None:
    """A redrive's message: how many orders were queued again, or, when none was, a warning
    saying why (a redrive queues an order once; a settled one stays as it is)."""
    if done:
        model_admin.message_user(request, f"{done} order(s) queued again.", messages.SUCCESS)
    else:
        model_admin.message_user(request, f"No order queued again: {none_why}.", messages.WARNING)


class ProductsWithHotOrdersFilter(admin.RelatedFieldListFilter):
    """The products that have hot orders, not the whole catalogue (thousands, where a sale has a
    few): each product asked through the orders' product index, so the orders of every sale are
    not read to find them."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        ordered = Exists(HotOrder.objects.filter(product=OuterRef("pk")))
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to=Q(ordered))


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
    # The stage tells the status too; short headers and dates keep the legacy number in view at 1280 px.
    list_display = ["number", "product", "qty", "stage", "email", "card", "tries", "legacy_no", "created"]
    list_filter = ["stage", "status", ("product", ProductsWithHotOrdersFilter), "reservation"]
    search_fields = ["number", "customer_email", "customer_name", "legacy_number", "idempotency_key"]
    date_hierarchy = "created_at"
    # The card number is never shown: only its last four digits. The unit price shows as a price.
    exclude = ["card_sealed", "token", "fingerprint", "unit_price_cents"]
    readonly_fields = [
        "number",
        "product",
        "quantity",
        "unit_price",
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
    actions = ["redrive", "cancel"]
    list_select_related = ["product"]
    # Every sale's orders: a second count of all of them on each page of the list is left out.
    show_full_result_count = False

    @admin.display(description="card")
    def card(self, obj: HotOrder) -> str:
        return obj.card_masked

    @admin.display(description="unit price")
    def unit_price(self, obj: HotOrder) -> str:
        return money(obj.unit_price_cents)

    @admin.display(description="customer email", ordering="customer_email")
    def email(self, obj: HotOrder) -> str:
        # A long address may wrap at its @ and dots rather than push the last columns out of view.
        parts = re.split(r"(?<=[.])|(?=@)", obj.customer_email)
        return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts))

    @admin.display(description="qty", ordering="quantity")
    def qty(self, obj: HotOrder) -> int:
        return obj.quantity

    @admin.display(description="tries", ordering="attempts")
    def tries(self, obj: HotOrder) -> int:
        return obj.attempts

    @admin.display(description="legacy no.", ordering="legacy_number")
    def legacy_no(self, obj: HotOrder) -> str:
        return obj.legacy_number or "–"

    @admin.display(description="accepted", ordering="created_at")
    def created(self, obj: HotOrder) -> str:
        return short_datetime(obj.created_at)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Redrive the selected dead-lettered orders", permissions=["change"])
    def redrive(self, request, queryset):
        done = sum(
            dead_letters.order_redrive(order_id=pk, user=request.user)
            for pk in queryset.filter(stage=OrderStage.DEAD_LETTERED).values_list("pk", flat=True)
        )
        redriven_say(
            self, request, done, none_why="none of them is dead-lettered now (already redriven, cancelled or placed)"
        )

    @admin.action(description="Cancel and release the units", permissions=["change"])
    def cancel(self, request, queryset):
        orders_cancel(self, request, queryset.values_list("pk", flat=True))

    def get_urls(self):
        live = path("live/", self.permission_view(self.live_view, "view"), name="orders_hotorder_live")
        return [live, *super().get_urls()]

    def live_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "title": "Hot path — live",
            "refresh_seconds": LIVE_REFRESH_SECONDS,
            "stats": selectors.queue_stats(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/live.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "live_url": reverse("admin:orders_hotorder_live")}
        return super().changelist_view(request, extra_context)


@admin.register(DeadLetter)
class DeadLetterAdmin(ShopModelAdmin):
    list_display = ["order", "product", "error_short", "attempts", "created", "redriven", "redriven_by"]
    # Only the products of dead letters, found from the letters (a few), not the catalogue (thousands).
    list_filter = [("redriven_at", admin.EmptyFieldListFilter), ("order__product", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["order__number", "order__customer_email", "error"]
    readonly_fields = ["order", "error", "attempts", "created_at", "redriven_at", "redriven_by", "resolution"]
    actions = ["redrive", "cancel"]
    list_select_related = ["order__product", "redriven_by"]

    def get_search_fields(self, request):
        # The list shows no buyer's email: found by one, a letter would tell it to staff who may
        # not see the orders' buyers, a character at a time (?q=a@, ?q=an@ ...).
        fields = super().get_search_fields(request)
        if self.admin_site.get_model_admin(HotOrder).has_view_permission(request):
            return fields
        return [field for field in fields if field != "order__customer_email"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # A dead letter is the merchant's handle on an order that still holds its units (and
        # the dashboard counts the open ones): it is settled by a redrive or a cancel, never
        # deleted, or the order would vanish from the list and the count while it holds stock.
        return False

    @admin.display(description="product")
    def product(self, obj: DeadLetter):
        return obj.order.product

    @admin.display(description="last error")
    def error_short(self, obj: DeadLetter) -> str:
        return obj.error[:120]

    @admin.display(description="dead-lettered", ordering="created_at")
    def created(self, obj: DeadLetter) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="redriven", ordering="redriven_at")
    def redriven(self, obj: DeadLetter) -> str:
        # A letter settled otherwise (cancelled) says so beside when.
        when = short_datetime(obj.redriven_at) or "–"
        return f"{obj.resolution}, {when}" if obj.resolution and obj.redriven_at else when

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redrive (queue the orders again)", permissions=["change"])
    def redrive(self, request, queryset):
        order_ids = set(queryset.filter(redriven_at__isnull=True).values_list("order_id", flat=True))
        done = sum(dead_letters.order_redrive(order_id=pk, user=request.user) for pk in order_ids)
        redriven_say(self, request, done, none_why="each was already redriven or settled")

    @admin.action(description="Cancel and release the units", permissions=["change"])
    def cancel(self, request, queryset):
        orders_cancel(self, request, set(queryset.values_list("order_id", flat=True)))
