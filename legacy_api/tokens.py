"""Callers' bearer tokens: who is calling comes from the token it presents, never from a header.

Tokens are kept as their SHA-256 (ApiToken); a token is shown once, when it is made. The
calling sides' own tokens come from settings.LEGACY_API_TOKENS and are registered after every
migrate, so `migrate && runserver` (and the test database) work with no set-up; in production
the tokens derived from SECRET_KEY are neither registered nor accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.conf import settings
from django.db.models.functions import Now

from legacy_api.models import ApiToken

CALLER_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# The caller allowed to read and reset the service's figures.
MERCHANT = "merchant"
# The caller that runs the sales: it takes their holds and places the orders drawn on them.
HOTPATH = "hotpath"
# The monolith's checkout.
STOREFRONT = "storefront"
# The callers that sell, and so place orders: a caller added later places none until named here.
ORDER_CALLERS = (STOREFRONT, HOTPATH)


class BadCaller(ValueError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def caller_check(caller: str) -> str:
    """The caller's name if it is one the service knows; BadCaller says why not."""
    if not CALLER_PATTERN.match(caller or ""):
        raise BadCaller(f"{caller!r} is not a caller name (lower-case letters, digits and '-').")
    if caller not in settings.LEGACY_API_CALLERS:
        raise BadCaller(f"unknown caller {caller!r}; callers are {', '.join(settings.LEGACY_API_CALLERS)}.")
    return caller


def _derived_refused(token: str) -> bool:
    # Compared as bytes: a header arrives as latin-1 text, and compare_digest refuses text past ASCII.
    return settings.DJANGO_ENV == "production" and any(
        hmac.compare_digest(token.encode(), derived.encode()) for derived in settings.LEGACY_API_TOKENS_DERIVED.values()
    )


def token_caller(*, token: str) -> str | None:
    """The caller a presented token belongs to, or None when it is unknown, revoked or refused."""
    if not token or len(token) > 200 or _derived_refused(token):
        return None
    row = ApiToken.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True).values("caller").first()
    return row["caller"] if row else None


def token_register(*, caller: str, token: str, label: str = "") -> ApiToken:
    """Registers a token whose value the caller already has; a revoked one stays revoked."""
    row, _ = ApiToken.objects.get_or_create(token_hash=token_hash(token), defaults={"caller": caller, "label": label})
    return row


def token_create(*, caller: str, label: str = "") -> tuple[ApiToken, str]:
    """A new random token for `caller`: the row, and the token itself (shown once, never stored)."""
    caller_check(caller)
    token = secrets.token_urlsafe(32)
    return ApiToken.objects.create(caller=caller, label=label, token_hash=token_hash(token)), token


def token_for_caller(*, caller: str) -> str:
    """A working token for `caller`: the configured one (registered if it was not) unless it is
    revoked or refused, else a new one."""
    caller_check(caller)
    configured = settings.LEGACY_API_TOKENS.get(caller, "")
    if configured and not _derived_refused(configured):
        row = token_register(caller=caller, token=configured, label="configured")
        if row.is_active and row.caller == caller:
            return configured
    return token_create(caller=caller, label="made by legacy_api_token")[1]


def token_revoke(*, pk: int) -> None:
    ApiToken.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=Now())


def tokens_register_configured(**kwargs) -> None:
    """post_migrate: the calling sides' configured tokens, so their requests are accepted."""
    for caller, token in settings.LEGACY_API_TOKENS.items():
        if token and not _derived_refused(token):
            token_register(caller=caller, token=token, label="configured")
