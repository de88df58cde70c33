"""The email backend of a production process with no mail server set (EMAIL_HOST).

Django's console backend writes each email whole to the process's output, which in production
is its log: a password reset link (which signs in whoever opens it), an email verification link,
the buyer's name and address. With no mail server, production refuses every email instead: each
sender keeps or reports what it could not send (shop.confirmations keeps a buyer's order email
until there is one) and nothing reaches the log."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

NO_MAIL_SERVER = "no mail server is set (EMAIL_HOST)"


class NoMailServerBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        if not email_messages or self.fail_silently:
            return 0
        raise ImproperlyConfigured(NO_MAIL_SERVER)
