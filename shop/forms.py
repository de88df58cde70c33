"""Forms of the storefront's pages: quantities, checkout, order lookup and sign-up."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from shop.services import MAX_LINE_QUANTITY, Delivery


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class BasketQuantityForm(forms.Form):
    # 0 removes the line, as in most shops.
    quantity = forms.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY)


COUNTRIES = [
    ("United States", "United States"),
    ("Canada", "Canada"),
    ("United Kingdom", "United Kingdom"),
    ("Ireland", "Ireland"),
    ("Germany", "Germany"),
    ("France", "France"),
    ("Netherlands", "Netherlands"),
    ("Sweden", "Sweden"),
    ("Norway", "Norway"),
    ("Finland", "Finland"),
    ("Australia", "Australia"),
    ("New Zealand", "New Zealand"),
]


class CheckoutForm(forms.Form):
    name = forms.CharField(label="Full name", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    address_line = forms.CharField(
        label="Address", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "street-address"})
    )
    city = forms.CharField(
        label="City", max_length=100, widget=forms.TextInput(attrs={"autocomplete": "address-level2"})
    )
    postcode = forms.CharField(
        label="Postcode / ZIP", max_length=20, widget=forms.TextInput(attrs={"autocomplete": "postal-code"})
    )
    country = forms.ChoiceField(
        label="Country", choices=COUNTRIES, widget=forms.Select(attrs={"autocomplete": "country-name"})
    )
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        help_text="Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined.",
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "placeholder": "4242 4242 4242 4242"}
        ),
    )

    def clean_card_number(self) -> str:
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise forms.ValidationError("Enter a card number of 12 to 19 digits.")
        if not _luhn_valid(digits):
            raise forms.ValidationError("This card number is not valid: check for a typo.")
        return digits

    def add_order_service_errors(self, fields: dict) -> None:
        """Puts the order service's field errors ("customer.email") on this form's fields."""
        for path, problems in fields.items():
            name = FIELDS_OF_ORDER_SERVICE.get(str(path).rsplit(".", 1)[-1])
            if name and isinstance(problems, list):
                for problem in problems:
                    self.add_error(name, str(problem))

    def delivery(self) -> Delivery:
        data = self.cleaned_data
        return Delivery(
            name=data["name"].strip(),
            email=data["email"].strip(),
            address_line=data["address_line"].strip(),
            city=data["city"].strip(),
            postcode=data["postcode"].strip(),
            country=data["country"],
        )


# The order service's field names, by the last part of their path, and this form's.
FIELDS_OF_ORDER_SERVICE = {"name": "name", "email": "email", "card_number": "card_number"}


def _luhn_valid(digits: str) -> bool:
    """The check digit every card number carries, so a typo is caught before ordering."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class OrderLookupForm(forms.Form):
    number = forms.CharField(label="Order number", max_length=32)
    email = forms.EmailField(label="Email used for the order", widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class SignUpForm(UserCreationForm):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.email = self.cleaned_data["email"]
        if commit:
            user.save()
        return user
