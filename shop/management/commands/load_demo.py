"""Loads the workshop's fishing shop: categories, products with pictures and stock, and a
merchant account. Idempotent: products are matched by slug, and what is already right is
left alone, so a second run changes nothing."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from shop.catalogue import CATEGORIES, PRODUCTS
from shop.models import Category, Product, Supplier
from shop.pictures import product_svg
from shop.product_address import PRICE, product_address_refusal
from shop.stock import product_stock_set

MERCHANT_USERNAME = "merchant"

# Who the shop buys each category from: (name, email, lead time in days).
SUPPLIERS = {
    "rods": ("Northwoods Rod Company", "orders@northwoodsrod.example", 14),
    "reels": ("Lakeshore Reel Works", "sales@lakeshorereels.example", 10),
    "hard-baits": ("Cedar Creek Lures", "wholesale@cedarcreeklures.example", 7),
    "soft-baits": ("Bayou Plastics Co.", "orders@bayouplastics.example", 5),
    "swim-baits": ("Cedar Creek Lures", "wholesale@cedarcreeklures.example", 7),
    "tackle-storage": ("Portage Tackle Supply", "trade@portagetackle.example", 12),
    "waders": ("Riverbend Outdoor Gear", "wholesale@riverbendoutdoor.example", 21),
}


class Command(BaseCommand):
    help = "Loads the demo fishing shop (idempotent). Creates the staff user 'merchant'."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the catalogue has products.")
        parser.add_argument(
            "--reset-stock",
            action="store_true",
            help=(
                "Set existing products' stock back to the demo figures (it is otherwise left as it is), "
                "but never below what open holds keep."
            ),
        )

    def handle(self, *args, if_empty: bool = False, reset_stock: bool = False, **options):
        if if_empty and Product.objects.exists():
            self.stdout.write("The catalogue already has products; nothing loaded.")
            if os.environ.get("MERCHANT_PASSWORD"):  # applied on every start: always a way back in
                self._merchant()
            return
        pictures = self._write_pictures()
        with transaction.atomic():
            categories, n_categories = self._categories()
            created, updated, kept = self._products(categories, pictures, reset_stock=reset_stock)
            self._suppliers()
        for slug, (demo, held) in kept.items():
            self.stdout.write(f"{slug}: stock kept at {held}, the units held for a sale, not the demo's {demo}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo catalogue: {len(CATEGORIES)} categories ({n_categories} new), {len(PRODUCTS)} products "
                f"({created} new, {updated} updated), {pictures['written']} pictures written."
            )
        )
        self._merchant()

    def _write_pictures(self) -> dict:
        folder = Path(settings.MEDIA_ROOT) / "products"
        folder.mkdir(parents=True, exist_ok=True)
        written = 0
        names = {}
        for item in PRODUCTS:
            svg = product_svg(kind=item.kind, colour=item.colour, accent=item.accent, title=item.title)
            path = folder / f"{item.slug}.svg"
            # Same bytes, same file: a second run does not touch it.
            if not path.exists() or path.read_text(encoding="utf-8") != svg:
                path.write_text(svg, encoding="utf-8")
                written += 1
            names[item.slug] = f"products/{item.slug}.svg"
        return {"names": names, "written": written}

    def _categories(self) -> tuple[dict[str, Category], int]:
        result, created = {}, 0
        for position, item in enumerate(CATEGORIES):
            wanted = {"name": item.name, "description": item.description, "position": position}
            category = Category.objects.filter(slug=item.slug).first()
            if category is None:
                category = Category.objects.create(slug=item.slug, **wanted)
                created += 1
            elif any(getattr(category, k) != v for k, v in wanted.items()):
                for key, value in wanted.items():
                    setattr(category, key, value)
                category.save()
            result[item.slug] = category
        return result, created

    def _products(
        self, categories: dict[str, Category], pictures: dict, *, reset_stock: bool
    ) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """Returns how many products were created and updated, and the products whose stock was
        kept above the demo's figure for the units their holds keep (slug: (demo, held))."""
        created = updated = 0
        kept: dict[str, tuple[int, int]] = {}
        for item in PRODUCTS:
            wanted = {
                "title": item.title,
                "category_id": categories[item.category].pk,
                "price_cents": item.price_cents,
                "description": item.description,
                "picture": pictures["names"][item.slug],
                "is_featured": item.featured,
            }
            product = Product.objects.filter(slug=item.slug).first()
            if product is None:
                Product.objects.create(slug=item.slug, stock=item.stock, **wanted)
                created += 1
                continue
            restocked = False
            if reset_stock:
                # Through the stock service: it locks the row, logs the change, and the check
                # constraint (held <= stock) is never what says no.
                before = product.stock
                product = product_stock_set(product_id=product.pk, stock=max(item.stock, product.held))
                restocked = product.stock != before
                if product.held > item.stock:
                    kept[item.slug] = (item.stock, product.held)
            # Stock, active and deleted are the merchant's (and the order backend's) once loaded.
            changed = [key for key, value in wanted.items() if _value(product, key) != value]
            if "category_id" in changed:
                reason = product_address_refusal(product_ids=[product.pk])
                if reason:  # its address is in use: moved back once its sale is over
                    changed.remove("category_id")
                    self.stdout.write(f"{item.slug}: left in its category. {reason}")
            if "price_cents" in changed:
                reason = product_address_refusal(product_ids=[product.pk], change=PRICE)
                if reason:  # its sale's page shows the price
                    changed.remove("price_cents")
                    self.stdout.write(f"{item.slug}: price kept. {reason}")
            if changed:
                for key in changed:
                    setattr(product, key, wanted[key])
                # Only these: stock and held move with orders and holds.
                product.save(update_fields=[*changed, "updated_at"])
            updated += bool(changed or restocked)
        return created, updated, kept

    def _suppliers(self) -> None:
        """Each demo product without a supplier gets its category's, and a reorder point of a
        tenth of its demo stock; a merchant's own choice is kept."""
        suppliers = {}
        for name, email, lead_time in SUPPLIERS.values():
            suppliers[name] = Supplier.objects.get_or_create(
                name=name, defaults={"email": email, "lead_time_days": lead_time}
            )[0]
        for item in PRODUCTS:
            supplier = suppliers[SUPPLIERS[item.category][0]]
            Product.objects.filter(slug=item.slug, supplier__isnull=True).update(
                supplier=supplier, reorder_point=max(item.stock // 10, 3)
            )

    def _merchant(self) -> None:
        User = get_user_model()
        password = os.environ.get("MERCHANT_PASSWORD", "")
        user = User.objects.filter(username=MERCHANT_USERNAME).first()
        if password:
            # The admin's own rules, as `changepassword` applies them: a superuser's password.
            try:
                validate_password(password, user=user)
            except ValidationError as exc:
                raise CommandError(f"MERCHANT_PASSWORD: {' '.join(exc.messages)}") from None
        if user is None:
            generated = not password
            password = password or secrets.token_urlsafe(12)
            User.objects.create_superuser(MERCHANT_USERNAME, "merchant@example.com", password)
            if generated:
                self.stdout.write(f"Merchant admin: user '{MERCHANT_USERNAME}', password {password} (at /admin/)")
            else:
                self.stdout.write(f"Merchant admin: user '{MERCHANT_USERNAME}', password from MERCHANT_PASSWORD")
            return
        if password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Merchant admin: password of '{MERCHANT_USERNAME}' set from MERCHANT_PASSWORD")


def _value(product: Product, key: str):
    value = getattr(product, key)
    return value.name if key == "picture" else value
