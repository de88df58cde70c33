"""The merchant's view of the records: orders (money and payment read-only), holds, authorisations
and callers' tokens."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from config.admin_base import ReadOnlyAdmin, ShopModelAdmin
from legacy_api.models import ApiToken, Hold, Order, OrderLine, PaymentAuthorisation
from legacy_api.tokens import token_create, token_revoke


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
class OrderAdmin(ShopModelAdmin):
    list_display = ["number", "reference", "caller", "customer_email", "status", "total", "created_at"]
    list_filter = ["status", "caller", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["number", "reference", "customer_email"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    # Every order of record: a second count of all of them on each page is left out.
    show_full_result_count = False
    fields = [
        "number",
        "reference",
        "caller",
        "status",
        "customer_name",
        "customer_email",
        "total",
        "card_last4",
        "authorisation_code",
        "processing_ms",
        "created_at",
    ]
    # Orders are placed through the API only; nothing of one is edited here: what was charged
    # and taken, nor its status (pending is a request still placing it: an order set back to it
    # answered "in progress" to every retry and lookup, for good).
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="total", ordering="total_cents")
    def total(self, order: Order) -> str:
        return _money(order.total_cents)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    """Holds are made and released through the API (a sale's opening and closing), so that
    Product.held always moves with them."""

    list_display = ["reference", "caller", "product", "quantity", "requested", "status", "updated_at"]
    list_filter = ["status", "caller"]
    search_fields = ["reference", "product__slug"]


@admin.register(PaymentAuthorisation)
class PaymentAuthorisationAdmin(ReadOnlyAdmin):
    list_display = ["key", "approved", "code", "last4", "amount_cents", "created_at", "voided_at"]
    list_filter = ["approved", ("voided_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "code"]


class ApiTokenForm(forms.ModelForm):
    caller = forms.ChoiceField(choices=[])

    class Meta:
        model = ApiToken
        fields = ["caller", "label"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "caller" in self.fields:  # only when adding: a token's caller never changes
            self.fields["caller"].choices = [(name, name) for name in settings.LEGACY_API_CALLERS]


@admin.register(ApiToken)
class ApiTokenAdmin(ShopModelAdmin):
    """Callers' tokens: made here (shown once, kept as a hash) and revoked, never edited or deleted,
    so that who held which token stays on record."""

    form = ApiTokenForm
    list_display = ["caller", "label", "short_hash", "created_at", "revoked_at"]
    list_filter = ["caller", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["caller", "label"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        return ["caller", "label"] if obj is None else ["caller", "label", "short_hash", "created_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["caller", "short_hash", "created_at", "revoked_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="token (SHA-256)")
    def short_hash(self, token: ApiToken) -> str:
        return f"{token.token_hash[:12]}…"

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["label"])
            return
        row, token = token_create(caller=obj.caller, label=obj.label)
        obj.pk, obj.token_hash, obj.created_at = row.pk, row.token_hash, row.created_at
        request.new_api_token = token

    def response_add(self, request, obj, post_url_continue=None):
        # The only time the token is seen (it is kept as its hash alone), on the answer itself:
        # a message would carry it to the next page in a cookie, signed but readable.
        context = {**self.admin_site.each_context(request), "opts": self.opts, "row": obj}
        return TemplateResponse(
            request, "admin/legacy_api/apitoken/created.html", {**context, "token": request.new_api_token}
        )

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for row in queryset.filter(revoked_at__isnull=True):
            token_revoke(pk=row.pk)
            self.log_action(request, [row], "Revoked.")
        self.message_user(request, "Revoked.", messages.SUCCESS)
