"""Forms of the account pages: changing the account's email."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User


class EmailChangeForm(forms.Form):
    """A new address for the account, confirmed with the password: the address decides
    which orders found by email the account may see once verified."""

    email = forms.EmailField(label="New email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, user: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
