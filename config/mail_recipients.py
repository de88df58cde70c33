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


def mail_sender(name: str, value: str) -> str:
    """One address mail comes from (SERVER_EMAIL), refused at start as a recipient is: a mail
    server refuses a sender it cannot read, and the error reports sent from it are lost unseen
    (Django sends them failing silently)."""
    if len(mail_recipients(name, value)) != 1:
        raise ImproperlyConfigured(f"{name} must be one address mail can come from: {value!r}.")
    return value.strip()
