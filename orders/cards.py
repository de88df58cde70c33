"""Card numbers at rest: sealed with Fernet from acceptance until a worker hands them to the
legacy API, so no full card number is ever stored in the clear (tables, backups, dead letters).

The keys come from CARD_ENCRYPTION_KEY (comma-separated Fernet keys, the newest first: it
seals, every one of them opens, so a key can be rotated in without losing orders in flight
when rolled out in the order the README gives). A Fernet token does not name its key: a sealed card no
configured key opens is taken for one sealed under a key this process does not hold (yet, in
a rolling deploy, or any more), never for a card that is gone.
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
    """The order's card number cannot be read here: CardWiped or CardKeyNotHeld."""


class CardWiped(CardUnavailable):
    """No card number is left to read (wiped when its order was final): no process can open it."""


class CardKeyNotHeld(CardUnavailable):
    """The card number is sealed under a key this process does not hold: one rotated in on
    another process first, or one retired too soon. A process holding the key can open it."""


def card_seal(number: str) -> str:
    """The card number as a Fernet token (ASCII), to store instead of the number."""
    return _fernet(settings.CARD_ENCRYPTION_KEY, settings.SECRET_KEY).encrypt(number.encode()).decode()


def card_open(sealed: str) -> str:
    """The card number a `card_seal` token holds; raises CardWiped or CardKeyNotHeld."""
    if not sealed:
        raise CardWiped("the card number was wiped")
    try:
        return _fernet(settings.CARD_ENCRYPTION_KEY, settings.SECRET_KEY).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise CardKeyNotHeld("the card number is sealed under a key this process does not hold") from exc


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
