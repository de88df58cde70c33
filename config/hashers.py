"""Argon2id at its smallest cost, for the test suite alone (DJANGO_ENV=test), which makes and
signs in thousands of users: about a millisecond a hash instead of a fifth of a second. Its
hashes carry their parameters, so any Argon2 hasher (a production process a test starts)
verifies them."""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class QuickArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024  # KiB
    parallelism = 1
