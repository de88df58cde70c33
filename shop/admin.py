"""The merchant admin: products (stock, activation, soft delete, restock) and categories; the
storefront's receipts, checkouts in doubt and order emails (read-only) are shop.admin_orders'.

Stock is changed through shop.stock, never by saving the whole row: the row's held and stock
move with every order and hold, and a form's copy of them is stale by the time it is saved."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_base import LoadedVersionForm, ShopModelAdmin
from shop.models import LOW_STOCK, Category, Product
from shop.price_field import PriceField
from shop.product_address import ADDRESS, OFF_SALE, PRICE, product_address_refusal
from shop.stock import StockBelowHeld, StockPastMax, product_stock_set, products_restock
from shop.templatetags.shop_tags import money


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Not deleted"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class StockStateFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock_state"

    def lookups(self, request, model_admin):
        return [("sold_out", "Sold out"), ("low", f"Low (1–{LOW_STOCK})"), ("in_stock", "In stock")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "sold_out":
            return queryset.filter(stock=0)
        if value == "low":
            return queryset.filter(stock__gte=1, stock__lte=LOW_STOCK)
        if value == "in_stock":
            return queryset.filter(stock__gt=LOW_STOCK)
        return queryset


class RestockForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=100_000, label="Add this many to each product's stock")


class ProductAdminForm(LoadedVersionForm):
    """The change form's and the change list's: stock may not go below what holds keep, and a
    page loaded before the product changed elsewhere (another merchant, an action) saves
    nothing over that change. Stock and held move with every order, so they are not part of
    the product's version: the stock the page showed is checked on its own."""

    version_fields = (
        "title",
        "slug",
        "category_id",
        "price_cents",
        "supplier_id",
        "reorder_point",
        "is_active",
        "is_featured",
        "description",
        "picture",
        "deleted_at",
    )

    class Meta:
        model = Product
        # The admin's own `fields` and `list_editable` decide what each form shows.
        fields = ["stock"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stock" in self.fields:
            # The page carries the stock it showed: a figure typed over one that orders or a
            # delivery have moved since would undo them (units sold put back on sale).
            self.fields["stock"].show_hidden_initial = True
        if "is_featured" in self.fields:
            # Changed is what differs from what the page showed: a row of the change list the
            # merchant left alone does not write back a box another merchant has changed since.
            self.fields["is_featured"].show_hidden_initial = True

    def clean_stock(self):
        stock = self.cleaned_data["stock"]
        if self.instance.pk is not None and stock is not None:
            shown = self._stock_shown()
            now = Product.objects.filter(pk=self.instance.pk).values_list("stock", flat=True).first()
            if shown is not None and now is not None and shown != now and stock != shown:
                # The page shown again carries the figure now, so the next save counts from it.
                self.data = self.data.copy()
                self.data[self.add_initial_prefix("stock")] = str(now)
                raise forms.ValidationError(
                    f"The stock changed from {shown} to {now} since you opened this page (orders or a delivery): "
                    f"nothing was saved. Enter the new figure counted from {now}.",
                    code="stale",
                )
            # As held is now, not as the page saw it: a sale may have taken a hold since.
            held = Product.objects.filter(pk=self.instance.pk).values_list("held", flat=True).first() or 0
            if stock < held:
                raise forms.ValidationError(
                    f"At least {held}: {held} units are held for a sale in the stock of record.", code="below_held"
                )
        return stock

    # What a sale may keep as it is (shop.product_address), by the field that would change it.
    SALE_KEEPS = {"slug": ADDRESS, "category": ADDRESS, "price_cents": PRICE, "is_active": OFF_SALE}

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        for field, change in self.SALE_KEEPS.items():
            if field not in self.changed_data or field not in cleaned:
                continue
            if field == "is_active" and cleaned[field]:
                continue  # put on sale: nothing a sale relies on changes
            reason = product_address_refusal(product_ids=[self.instance.pk], change=change)
            if reason:
                self.add_error(field, reason)
        return cleaned

    def _stock_shown(self) -> int | None:
        """The stock the page showed (its hidden initial input), or None if it sent none."""
        raw = self.data.get(self.add_initial_prefix("stock"))
        try:
            return int(raw) if raw not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def clean_reorder_point(self):
        # Left out of a post (a form of before the field): kept as it is.
        value = self.cleaned_data.get("reorder_point")
        return self.instance.reorder_point if value is None else value


@admin.register(Product)
class ProductAdmin(ShopModelAdmin):
    form = ProductAdminForm
    list_display = [
        "thumbnail",
        "title",
        "category",
        "price_display",
        "stock",
        "stock_state_display",
        "is_active",
        "is_featured",
        "deleted_display",
    ]
    list_display_links = ["thumbnail", "title"]
    list_editable = ["stock", "is_featured"]
    list_filter = ["category", "is_active", DeletedFilter, StockStateFilter, "is_featured"]
    list_select_related = ["category"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["picture_preview", "deleted_at", "created_at", "updated_at"]
    fields = [
        "title",
        "slug",
        "category",
        "price_cents",
        "stock",
        "supplier",
        "reorder_point",
        "is_active",
        "is_featured",
        "description",
        "picture",
        "picture_preview",
        "deleted_at",
        "created_at",
        "updated_at",
    ]
    actions = ["mark_active", "mark_inactive", "soft_delete", "restore", "restock"]
    list_per_page = 50

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, **{"form": ProductAdminForm, **kwargs})

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "price_cents":
            return PriceField(required=not db_field.blank)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None) -> bool:
        # The product row is the legacy API's stock of record: deleting it drops its units on
        # hand without a STOCK event (the inventory view keeps them for good) and empties
        # baskets silently. *Soft delete* is how a product leaves the shop.
        return False

    def save_model(self, request, obj: Product, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        with transaction.atomic():
            if "stock" in form.changed_data:
                try:
                    product_stock_set(product_id=obj.pk, stock=obj.stock)
                except StockBelowHeld as exc:
                    # A hold taken between the form's check and this save: the form had it right.
                    self.message_user(request, f"Stock of {obj.title} not changed: {exc}", messages.ERROR)
            # Only what the merchant changed: stock and held belong to orders and holds too.
            fields = [name for name in form.changed_data if name != "stock"]
            if fields:
                obj.save(update_fields=[*fields, "updated_at"])
        obj.refresh_from_db(fields=["stock", "held"])

    @admin.display(description="Picture")
    def thumbnail(self, obj: Product) -> str:
        if not obj.picture:
            return "—"
        return format_html('<img src="{}" alt="" width="64" height="48" class="product-thumb">', obj.picture.url)

    @admin.display(description="Preview")
    def picture_preview(self, obj: Product) -> str:
        if not obj.picture:
            return "—"
        return format_html('<img src="{}" alt="{}" width="320" class="product-preview">', obj.picture.url, obj.title)

    @admin.display(description="Price", ordering="price_cents")
    def price_display(self, obj: Product) -> str:
        return money(obj.price_cents)

    @admin.display(description="Stock state")
    def stock_state_display(self, obj: Product) -> str:
        return {"sold_out": "Sold out", "low": f"Only {obj.stock} left", "in_stock": "In stock"}[obj.stock_state]

    @admin.display(description="Deleted", boolean=True, ordering="deleted_at")
    def deleted_display(self, obj: Product) -> bool:
        return obj.deleted_at is not None

    @admin.action(description="Mark selected products active", permissions=["change"])
    def mark_active(self, request: HttpRequest, queryset) -> None:
        products = list(queryset.filter(deleted_at__isnull=True))
        count = queryset.filter(deleted_at__isnull=True).update(is_active=True, updated_at=timezone.now())
        self.log_action(request, products, "Marked active (on sale).")
        skipped = queryset.filter(deleted_at__isnull=False).count()
        self.message_user(request, f"{count} product(s) are on sale.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} deleted product(s) skipped: restore them first.", messages.WARNING)

    @admin.action(description="Mark selected products inactive", permissions=["change"])
    def mark_inactive(self, request: HttpRequest, queryset) -> None:
        # Asked and written in one transaction: see _not_sold_elsewhere.
        with transaction.atomic():
            queryset = self._not_sold_elsewhere(request, queryset)
            products = list(queryset)
            count = queryset.update(is_active=False, updated_at=timezone.now())
            self.log_action(request, products, "Marked inactive (taken off sale).")
        self.message_user(request, f"{count} product(s) taken off sale.", messages.SUCCESS)

    @admin.action(description="Soft delete selected products", permissions=["change"])
    def soft_delete(self, request: HttpRequest, queryset) -> None:
        # Asked and written in one transaction: see _not_sold_elsewhere.
        with transaction.atomic():
            queryset = self._not_sold_elsewhere(request, queryset)
            now = timezone.now()
            products = list(queryset.filter(deleted_at__isnull=True))
            count = queryset.filter(deleted_at__isnull=True).update(deleted_at=now, is_active=False, updated_at=now)
            self.log_action(request, products, "Soft deleted.")
        self.message_user(request, f"{count} product(s) deleted (they can be restored).", messages.SUCCESS)

    def _not_sold_elsewhere(self, request: HttpRequest, queryset):
        """The selected products less those a sale still needs on sale, each named with why.

        Called in the caller's transaction, which writes the products off sale: the asking locks
        their rows until that commits, so a sale opening meanwhile (it takes the same lock before
        it commits, orders.sales) waits for the write and is refused, its hold given back. Asked
        in a transaction of its own, the lock ended before the write, and a sale opened in
        between was left open on a product nobody could buy, its units held. In the rows' order,
        so two such actions lock them alike."""
        kept = []
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            reason = product_address_refusal(product_ids=[pk], change=OFF_SALE)
            if reason:
                kept.append(pk)
                self.message_user(request, f"Left on sale: {reason}", messages.ERROR)
        return queryset.exclude(pk__in=kept)

    @admin.action(
        description="Restore selected deleted products (inactive until marked active)", permissions=["change"]
    )
    def restore(self, request: HttpRequest, queryset) -> None:
        products = list(queryset.filter(deleted_at__isnull=False))
        count = queryset.filter(deleted_at__isnull=False).update(deleted_at=None, updated_at=timezone.now())
        self.log_action(request, products, "Restored (inactive).")
        self.message_user(request, f"{count} product(s) restored.", messages.SUCCESS)

    @admin.action(description="Restock selected products…", permissions=["change"])
    def restock(self, request: HttpRequest, queryset):
        form = RestockForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            quantity = form.cleaned_data["quantity"]
            try:
                count = products_restock(product_ids=queryset.values_list("pk", flat=True), quantity=quantity)
            except StockPastMax as exc:
                form.add_error("quantity", str(exc))
            else:
                self.log_action(request, queryset, f"Restocked: {quantity} added to its stock.")
                self.message_user(request, f"Added {quantity} to the stock of {count} product(s).", messages.SUCCESS)
                return HttpResponseRedirect(request.get_full_path())
        context = {
            **self.admin_site.each_context(request),
            "title": "Restock products",
            "opts": self.model._meta,
            "products": queryset,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/shop/product/restock.html", context)


class CategoryAdminForm(forms.ModelForm):
    """A category's slug is part of its products' addresses."""

    class Meta:
        model = Category
        fields = ["name", "slug", "description", "position"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if self.instance.pk is not None and slug != self.instance.slug:
            reason = product_address_refusal(product_ids=self.instance.products.values_list("pk", flat=True))
            if reason:
                raise forms.ValidationError(reason, code="address_in_use")
        return slug


@admin.register(Category)
class CategoryAdmin(ShopModelAdmin):
    form = CategoryAdminForm
    list_display = ["name", "slug", "position", "product_count", "on_sale_count"]
    list_editable = ["position"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_products=Count("products", filter=Q(products__deleted_at__isnull=True)),
                n_on_sale=Count("products", filter=Q(products__deleted_at__isnull=True, products__is_active=True)),
            )
        )

    @admin.display(description="Products", ordering="n_products")
    def product_count(self, obj) -> int:
        return obj.n_products

    @admin.display(description="On sale", ordering="n_on_sale")
    def on_sale_count(self, obj) -> int:
        return obj.n_on_sale


# The storefront's receipts, checkouts in doubt and order emails: read-only, in their own module.
from shop import admin_orders  # noqa: E402, F401
