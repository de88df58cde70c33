"""Forms of the storefront's pages: quantities, checkout (with the address as its country writes it),
order lookup and sign-up."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from shop.addresses import CONVENTIONS, Convention, convention_for
from shop.addresses import COUNTRIES as ADDRESS_COUNTRIES
from shop.card_numbers import luhn_valid
from shop.delivery import Delivery
from shop.order_input import text_is_clean, validate_email
from shop.services import MAX_LINE_QUANTITY


class CleanTextField(forms.CharField):
    """Free text a person writes, held to the shop's one rule for it (text_is_clean: no control
    characters, line separators, private-use or unassigned code points). Checked as sent, spaces
    and tabs at either end aside: str.strip() would quietly drop a vertical tab or a U+2028 there."""

    def to_python(self, value):
        if isinstance(value, str) and not text_is_clean(value.strip(" \t")):
            label = re.sub(r"\s*\(.*\)$", "", str(self.label or "this field"))
            raise ValidationError(
                f"Write your {_in_sentence(label)} with letters, digits and punctuation only.", code="unclean"
            )
        return super().to_python(value)


class ShopEmailField(forms.EmailField):
    """An email address as the shop checks it on every origin (shop.order_input.validate_email):
    Django's own check takes any code point from U+00A1 up in the domain, separators included."""

    default_validators = [validate_email]


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class BasketQuantityForm(forms.Form):
    # 0 removes the line, as in most shops.
    quantity = forms.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY)


# The countries we deliver to, and how each writes an address (shop.addresses).
COUNTRIES = ADDRESS_COUNTRIES

# Before a country is known (and without the page's script), labels that fit every country.
GENERIC_LABELS = {
    "city": "City or town",
    "region": "State, province or territory",
    "county": "County (UK and Ireland, optional)",
    "postcode": "Postcode / ZIP",
}


def _region_choices() -> list:
    """One list grouped by country, so the form works without a script; clean() checks that
    the state belongs to the country chosen."""
    groups = [(name, list(c.regions)) for name, c in CONVENTIONS.items() if c.regions]
    return [("", "Choose…"), *groups]


def _in_sentence(label: str) -> str:
    """A label mid-sentence: "postal code", but "ZIP code" and "Eircode" keep their capitals."""
    return label if label[:2].isupper() or label == "Eircode" else label[0].lower() + label[1:]


class CardNumberInput(forms.TextInput):
    """A card number field that is never filled in by the server: a form sent back with an
    error (a declined card, a missing postcode) asks for the number again rather than
    writing it into the page, as payment forms do."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


class CheckoutForm(forms.Form):
    name = CleanTextField(label="Full name", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = ShopEmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    # First, as international address forms put it: it decides the fields below and their names.
    country = forms.ChoiceField(
        label="Country", choices=COUNTRIES, widget=forms.Select(attrs={"autocomplete": "country-name"})
    )
    address_line = CleanTextField(
        label="Address", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "street-address"})
    )
    city = CleanTextField(
        label=GENERIC_LABELS["city"], max_length=100, widget=forms.TextInput(attrs={"autocomplete": "address-level2"})
    )
    region = forms.ChoiceField(
        label=GENERIC_LABELS["region"],
        required=False,
        choices=_region_choices,
        widget=forms.Select(attrs={"autocomplete": "address-level1"}),
    )
    county = CleanTextField(
        label=GENERIC_LABELS["county"],
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "address-level1"}),
    )
    postcode = CleanTextField(
        label=GENERIC_LABELS["postcode"],
        required=False,  # per country, in clean(): an Irish address may have no Eircode
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
    # The signature of the basket the page showed (shop.selectors.basket_signature), rendered by
    # the template as it shows the basket; none (a client that never saw the page): not checked.
    basket_shown = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        help_text="Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined.",
        widget=CardNumberInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "placeholder": "4242 4242 4242 4242"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Once the country is known (the form comes back with an error), the page speaks its language.
        self.convention = convention_for(self.data.get("country", "")) if self.is_bound else None
        if self.convention is not None:
            self._label_for(self.convention)

    def _label_for(self, convention: Convention) -> None:
        self.fields["city"].label = convention.city_label
        self.fields["postcode"].label = convention.postcode_label + (
            "" if convention.postcode_required else " (optional)"
        )
        if convention.regions:
            self.fields["region"].label = convention.region_label
            # Only the display narrows: a state of another country still gets clean()'s message.
            self.fields["region"].widget.choices = [("", "Choose…"), *convention.regions]
        if convention.county:
            self.fields["county"].label = f"{convention.region_label} (optional)"

    @property
    def address_fields_shown(self) -> dict[str, bool]:
        """Which of the country-dependent fields the page shows (all of them until the country is
        known: the page's script narrows them as the shopper picks one)."""
        if self.convention is None:
            return {"region": True, "county": True}
        return {"region": self.convention.has_region_list, "county": self.convention.county}

    @staticmethod
    def address_conventions() -> dict[str, dict]:
        """Every country's labels and states, for the page's script (json_script)."""
        return {name: convention.as_json() for name, convention in CONVENTIONS.items()}

    def clean(self) -> dict:
        cleaned = super().clean()
        convention = convention_for(cleaned.get("country", ""))
        if convention is None:
            return cleaned
        region = cleaned.get("region", "")
        if convention.regions:
            if not region:
                self.add_error("region", f"Choose your {convention.region_label.lower()}.")
            elif region not in dict(convention.regions):
                self.add_error("region", f"Choose a {convention.region_label.lower()} of {cleaned['country']}.")
        elif convention.county:
            cleaned["region"] = (cleaned.get("county") or "").strip()
        else:
            cleaned["region"] = ""
        postcode = (cleaned.get("postcode") or "").strip()
        label = _in_sentence(convention.postcode_label)
        if not postcode:
            if convention.postcode_required:
                self.add_error("postcode", f"Enter your {label}.")
        elif (normal := convention.postcode(postcode)) is None:
            self.add_error("postcode", f"Enter a valid {label}, like {convention.postcode_example}.")
        else:
            cleaned["postcode"] = normal
        return cleaned

    def clean_card_number(self) -> str:
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise forms.ValidationError("Enter a card number of 12 to 19 digits.")
        if not luhn_valid(digits):
            raise forms.ValidationError("This card number is not valid: check for a typo.")
        return digits

    def add_order_service_errors(self, fields: dict) -> dict:
        """Puts the order service's field errors ("customer.email") on this form's fields, and
        returns those that name no field of this form, for the page to list."""
        unplaced = {}
        for path, problems in fields.items():
            name = FIELDS_OF_ORDER_SERVICE.get(str(path).rsplit(".", 1)[-1])
            if name and isinstance(problems, list):
                for problem in problems:
                    self.add_error(name, str(problem))
            else:
                unplaced[path] = problems
        return unplaced

    def delivery(self) -> Delivery:
        data = self.cleaned_data
        return Delivery(
            name=data["name"].strip(),
            email=data["email"].strip(),
            address_line=data["address_line"].strip(),
            city=data["city"].strip(),
            region=data.get("region", ""),
            postcode=data["postcode"].strip(),
            country=data["country"],
        )


# The order service's field names, by the last part of their path, and this form's.
FIELDS_OF_ORDER_SERVICE = {"name": "name", "email": "email", "card_number": "card_number"}


class OrderLookupForm(forms.Form):
    # Three things only the buyer holds together: order numbers run in sequence, so a number
    # and an email alone could be found by trying numbers.
    number = CleanTextField(label="Order number", max_length=32)
    email = ShopEmailField(label="Email used for the order", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    card_last4 = forms.CharField(
        label="Last four digits of the card you paid with",
        max_length=4,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{4}", "placeholder": "4242"}
        ),
    )

    def clean_card_last4(self) -> str:
        digits = self.cleaned_data["card_last4"].strip()
        if len(digits) != 4 or not digits.isascii() or not digits.isdigit():
            raise forms.ValidationError("Enter the last four digits of the card, like 4242.")
        return digits


class SignUpForm(UserCreationForm):
    # The username needs no more: Django's validator takes letters, digits and @.+-_ only.
    email = ShopEmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.email = self.cleaned_data["email"]
        if commit:
            user.save()
        return user
