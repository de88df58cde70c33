"""Verified addresses are kept by their key (shop.order_input.email_key), as they are compared
now: each proof of the account's current address is re-keyed from that address (the same for
a plain ASCII one; a domain in another script becomes the one its link was mailed to). A proof
of an address the account no longer has is dropped, as changing the address drops it."""

import string

from django.db import migrations, models
from django.utils.encoding import punycode

# shop.order_input.email_key as it stood when this migration was written: a migration keeps
# doing what it did, whatever the code becomes.
EMAIL_MAX_LENGTH = 254
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(email: str) -> str:
    local, at, domain = (email or "").strip().rpartition("@")
    if not at:
        return domain.translate(_ASCII_LOWER)
    try:
        domain = punycode(domain).lower()
    except UnicodeError:
        domain = domain.translate(_ASCII_LOWER)
    return f"{local.translate(_ASCII_LOWER)}@{domain}"


def verified_emails_keyed(apps, schema_editor):
    VerifiedEmail = apps.get_model("shop", "VerifiedEmail")
    stale, keyed = [], []
    for verified in VerifiedEmail.objects.select_related("user").order_by("pk"):
        address = verified.user.email or ""
        key = email_key(address)
        # What the proof was recorded under: the address stripped and lower-cased.
        if verified.email != address.strip().lower() or not key or len(key) > EMAIL_MAX_LENGTH:
            stale.append(verified.pk)
        elif verified.email != key:
            verified.email = key
            keyed.append(verified)
    # Dropped first: a stale proof may already hold the key a current one takes.
    VerifiedEmail.objects.filter(pk__in=stale).delete()
    VerifiedEmail.objects.bulk_update(keyed, ["email"])


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0008_suppliers_and_reorder_points"),
    ]

    operations = [
        migrations.AlterField(
            model_name="verifiedemail",
            name="email",
            field=models.EmailField(
                help_text="The address's key (shop.order_input.email_key), as it is compared.", max_length=254
            ),
        ),
        migrations.RunPython(verified_emails_keyed, migrations.RunPython.noop, elidable=True),
    ]
