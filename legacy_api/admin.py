"""The merchant's view of orders of record: searchable, filterable, money and payment read-only."""

from django.contrib import admin

from legacy_api.models import Order, OrderLine


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    fields = ["product_slug", "title", "quantity", "unit_price", "line_total"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="unit price")
    def unit_price(self, line: OrderLine) -> str:
        return _money(line.unit_price_cents)

    @admin.display(description="total")
    def line_total(self, line: OrderLine) -> str:
        return _money(line.total_cents)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "reference", "customer_email", "status", "total", "created_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["number", "reference", "customer_email"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    fields = [
        "number",
        "reference",
        "status",
        "customer_name",
        "customer_email",
        "total",
        "card_last4",
        "authorisation_code",
        "processing_ms",
        "created_at",
    ]
    # Orders are placed through the API only; what was charged and taken cannot be edited.
    readonly_fields = [name for name in fields if name != "status"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="total", ordering="total_cents")
    def total(self, order: Order) -> str:
        return _money(order.total_cents)
