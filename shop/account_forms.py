"""Forms of the account pages: changing the account's email."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

from shop.forms import ShopEmailField


class EmailChangeForm(forms.Form):
    """A new address for the account, confirmed with the password: the address decides
    which orders found by email the account may see once verified."""

    email = ShopEmailField(label="New email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, request: HttpRequest, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = request.user

    def clean_password(self) -> str:
        """Checked as signing in checks it, through the authentication backends: a wrong
        password counts toward django-axes' lockout of the account and the address, and once
        locked out, even the right one is refused (the lockout page answers the request)."""
        password = self.cleaned_data["password"]
        user = authenticate(self.request, username=self.user.get_username(), password=password)
        if user is None or user.pk != self.user.pk:
            raise forms.ValidationError("That is not your password.")
        return password
