"""The development SECRET_KEY and what makes a key too weak to trust: read by the settings,
which refuse a weak key in production, and by run.py before Django is installed, which refuses
to serve the development server to other machines with one."""

from __future__ import annotations

DEFAULT_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - public, refused where it matters


def secret_key_weakness(key: str) -> str:
    """Why a key is too weak for production (Django's own bar: 50 characters, 5 distinct)."""
    if key == DEFAULT_SECRET_KEY or key.startswith("django-insecure-"):
        return "is the development default"
    if len(key) < 50:
        return f"has {len(key)} characters; at least 50 are needed"
    if len(set(key)) < 5:
        return "has fewer than 5 distinct characters"
    return ""
