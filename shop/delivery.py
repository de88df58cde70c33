"""Where an order goes and who ordered it, as a checkout's form gives it (the legacy API's order
has no address: the storefront keeps it on the receipt)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Delivery:
    name: str
    email: str
    address_line: str
    city: str
    postcode: str
    country: str
    # State, province or county, as the country writes it (shop.addresses); none for many.
    region: str = ""

    @classmethod
    def of(cls, written: Mapping) -> Delivery:
        """The delivery as a checkout in doubt keeps it (one of its tries, shop.checkout_pending)."""
        return cls(**{field.name: written[field.name] for field in fields(cls)})
