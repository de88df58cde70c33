"""Card numbers at rest: sealed with Fernet from acceptance until a worker hands them to the
legacy API, so no full card number is ever stored in the clear (tables, backups, dead letters).

The keys come from CARD_ENCRYPTION_KEY (comma-separated Fernet keys, the newest first: it
seals, every one of them opens, so a key can be rotated in without losing orders in flight).
In production they are kept in AWS KMS (a Secrets Manager secret or an SSM SecureString
encrypted by a KMS key) and given to the processes in their environment; the database and
its backups never hold them. Development and tests derive one key from SECRET_KEY.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CardUnavailable(Exception):
    """The order's card number can no longer be read: wiped, or sealed under a retired key."""


def card_seal(number: str) -> str:
    """The card number as a Fernet token (ASCII), to store instead of the number."""
    return _fernet(settings.CARD_ENCRYPTION_KEY, settings.SECRET_KEY).encrypt(number.encode()).decode()


def card_open(sealed: str) -> str:
    """The card number a `card_seal` token holds; raises CardUnavailable."""
    if not sealed:
        raise CardUnavailable("the card number was wiped")
    try:
        return _fernet(settings.CARD_ENCRYPTION_KEY, settings.SECRET_KEY).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise CardUnavailable("the card number was sealed under a key no longer configured") from exc


@functools.cache
def _fernet(keys: str, secret_key: str) -> MultiFernet:
    if keys.strip():
        try:
            return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
        except ValueError as exc:
            raise ImproperlyConfigured(
                "CARD_ENCRYPTION_KEY must be Fernet keys (Fernet.generate_key()), comma-separated"
            ) from exc
    if settings.DJANGO_ENV == "production":  # settings refuse this too; a second lock on the door
        raise ImproperlyConfigured("Production needs CARD_ENCRYPTION_KEY.")
    derived = hashlib.sha256(b"card-encryption:" + secret_key.encode()).digest()
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])
