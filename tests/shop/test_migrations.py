"""The storefront's data migrations, run on a database holding what they change."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from shop import accounts
from shop.models import VerifiedEmail
from tests.conftest import migrate_to

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("migrations_restored"),
]

BEFORE = [("shop", "0008_suppliers_and_reorder_points")]
AFTER = [("shop", "0009_verifiedemail_by_key")]


def test_verified_addresses_are_kept_by_their_key_and_proofs_of_former_ones_dropped():
    users = get_user_model().objects
    ada = users.create_user("ada", "Ada@Example.com", "a-long-test-password")
    bo = users.create_user("bo", "Bo@B\u00fccher.de", "a-long-test-password")
    cy = users.create_user("cy", "cy@new.example", "a-long-test-password")
    old = migrate_to(BEFORE).loader.project_state(BEFORE).apps.get_model("shop", "VerifiedEmail")
    # As they were recorded: the address stripped and lower-cased.
    for user, email in [
        (ada, "ada@example.com"),
        (bo, "bo@b\u00fccher.de"),
        (bo, "bo@xn--bcher-kva.de"),  # a former spelling, which holds the key the current one takes
        (cy, "cy@old.example"),  # an address the account gave up (changed in the admin)
    ]:
        old.objects.create(user_id=user.pk, email=email)

    migrate_to(AFTER)

    assert sorted(VerifiedEmail.objects.values_list("user__username", "email")) == [
        ("ada", "ada@example.com"),
        ("bo", "bo@xn--bcher-kva.de"),
    ]
    assert [accounts.email_is_verified(user=user) for user in (ada, bo, cy)] == [True, True, False]
