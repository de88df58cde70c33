"""A production process with no mail server prints no email into its log (config.mail)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.db import transaction

from shop import confirmations, emails
from shop.models import OrderEmail
from tests.conftest import ROOT

# A password reset, as shop.password_reset sends it through Django's form: the link in it signs in
# whoever opens it.
RESET_SCRIPT = """
import django
django.setup()
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm

class Account:
    pk = 7
    def get_username(self):
        return "ada"

context = {"user": Account(), "uid": "Nw", "token": "LINK-TOKEN-1234", "base_url": "https://shop.example.com"}
PasswordResetForm().send_mail(
    "shop/accounts/password_reset_subject.txt", "shop/accounts/password_reset_email.txt", context,
    settings.DEFAULT_FROM_EMAIL, "ada@example.com",
)
print("backend", settings.EMAIL_BACKEND)
"""


def _production(**env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("EMAIL_HOST", "EMAIL_BACKEND", "PYTEST_VERSION")}
    return {
        **environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "production",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "shop.example.com",
        "CARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "LEGACY_API_TOKEN_STOREFRONT": secrets.token_urlsafe(32),
        "LEGACY_API_TOKEN_HOTPATH": secrets.token_urlsafe(32),
        **env,
    }


def test_production_without_a_mail_server_writes_no_reset_link_nor_address_into_its_log():
    """The console backend printed each email whole to the process's output, its log in
    production: a password reset link there lets whoever reads the log into the account."""
    done = subprocess.run(
        [sys.executable, "-c", RESET_SCRIPT], cwd=ROOT, env=_production(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "LINK-TOKEN-1234" not in output and "ada@example.com" not in output
    assert "backend config.mail.NoMailServerBackend" in done.stdout
    assert "no mail server is set (EMAIL_HOST)" in done.stderr  # the form logs why nothing was sent


def test_production_with_a_mail_server_or_a_backend_named_uses_it():
    script = "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_BACKEND)"
    for env, backend in (
        ({"EMAIL_HOST": "smtp.example.com"}, "django.core.mail.backends.smtp.EmailBackend"),
        (
            {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
            "django.core.mail.backends.locmem.EmailBackend",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=_production(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.stdout.strip().splitlines()[-1] == backend, done.stderr


def test_a_reset_asked_for_without_a_mail_server_answers_as_ever_and_prints_nothing(client, settings, db, capsys):
    settings.EMAIL_BACKEND = "config.mail.NoMailServerBackend"
    User.objects.create_user("ada", "ada@example.com", "a-long-passphrase-1")

    response = client.post("/accounts/password-reset/", {"email": "ada@example.com"})

    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert "password-reset/" not in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_buyer_s_order_email_waits_for_a_mail_server_as_before(settings, capsys):
    """Refused by this backend as by shop.emails' own check: kept, not an attempt, never printed."""
    settings.DJANGO_ENV = "production"
    settings.EMAIL_BACKEND = "config.mail.NoMailServerBackend"
    with transaction.atomic():
        confirmations.order_confirmation_on_commit(
            emails.Confirmation(
                number="T000009", name="Ada", email="ada@example.com", lines=[("Rod", 1)], total_cents=14999
            )
        )
    kept = OrderEmail.objects.get(number="T000009")
    assert kept.sent_at is None and "no mail server is set (EMAIL_HOST)" in kept.last_error
    assert kept.attempts == 0
    assert "ada@example.com" not in capsys.readouterr().out
