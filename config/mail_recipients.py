"""Mail recipients named in the environment, read when the settings load (so this imports
nothing of Django's that needs them)."""

from __future__ import annotations

from email.utils import getaddresses

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email


def mail_recipients(name: str, value: str) -> list[tuple[str, str]]:
    """`Ops <ops@example.com>, oncall@example.com` as Django's (name, address) pairs; an address
    mail cannot go to is refused at start, naming the variable: a report sent to it is lost."""
    recipients = []
    for display, address in getaddresses([value]) if value.strip() else []:
        try:
            validate_email(address)
        except ValidationError:
            raise ImproperlyConfigured(f"{name} holds an address mail cannot go to: {value!r}.") from None
        recipients.append((display or address, address))
    return recipients
