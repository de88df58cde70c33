"""Static files in production: collectstatic writes the manifest, so the pages name each file
by its hashed name and the browser keeps it for good, instead of asking again every minute."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import urllib.request

import pytest
from cryptography.fernet import Fernet

from tests.conftest import ROOT


@pytest.mark.slow
def test_collected_static_files_are_named_by_their_hash_and_kept_for_good(processes, process_env, tmp_path):
    env = {
        **process_env,
        "DJANGO_ENV": "production",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CARD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "VAR_DIR": str(tmp_path / "var"),
        "SHOP_DEPLOYMENT": "monolith",
        "LEGACY_API_TOKEN_STOREFRONT": secrets.token_urlsafe(32),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    assert (tmp_path / "var" / "static" / "staticfiles.json").exists()
    base = processes.gunicorn("config.wsgi_monolith", env, workers=1, threads=2)

    with urllib.request.urlopen(f"{base}/accounts/login/", timeout=30) as response:  # loopback
        page = response.read().decode()
    stylesheet = re.search(r'href="(/static/shop/shop\.[0-9a-f]{12}\.css)"', page)

    assert stylesheet, "the page names the stylesheet by its hashed name"
    with urllib.request.urlopen(base + stylesheet.group(1), timeout=30) as response:  # loopback
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
