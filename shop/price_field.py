"""A price as the merchant types it: in dollars and cents, as every page of the shop shows it
("149.99"), kept in cents. A field of bare cents took "149" for $1.49: a product put on sale at
a hundredth of its price, and every order charged so."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from shop.models import MAX_PRICE_CENTS

CENT = Decimal("0.01")
PRICE_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
# Commas only between groups of three figures, as the pages print a price ("1,499.00"): "1,49",
# cents after a comma as much of the world writes them, is no $149.00.
GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?", re.ASCII)


class PriceField(forms.DecimalField):
    default_error_messages = {
        "invalid": "Enter the price in dollars and cents, such as 149.99.",
        "comma": "Enter the cents after a point, such as 149.99; a comma only between thousands: 1,499.00.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Price")
        kwargs.setdefault("help_text", "In dollars and cents, as the shop shows it: 149.99.")
        super().__init__(
            max_digits=None,
            decimal_places=2,
            min_value=CENT,
            max_value=Decimal(MAX_PRICE_CENTS) * CENT,
            **kwargs,
        )

    def prepare_value(self, value):
        """The stored cents shown as dollars; what the merchant typed shown back as typed."""
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{Decimal(value) * CENT:.2f}"
        return value

    def to_python(self, value):
        # "$1,499.00" as the pages print it is taken too; a browser's number input sends "1499.00".
        # Only figures: Decimal would also read "1e3" as $1,000.00.
        if isinstance(value, str):
            value = value.strip().removeprefix("$")
            if "," in value:
                if not GROUPED.fullmatch(value):
                    raise ValidationError(self.error_messages["comma"], code="comma")
                value = value.replace(",", "")
            if value and not PRICE_TEXT.fullmatch(value):
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)

    def clean(self, value) -> int | None:
        dollars = super().clean(value)
        return None if dollars is None else int(dollars / CENT)

    def has_changed(self, initial, data) -> bool:
        try:
            typed = self.to_python(data)
        except ValidationError:
            return True
        return (None if typed is None else typed / CENT) != (None if initial is None else Decimal(initial))
