"""Orders the storefront shows but does not keep: the sale's orders live with the hot path,
which the storefront never imports. The deployment (config) hands the order pages finders
for them; the storefront only knows this small shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

STATUS_LABELS = {"processing": "Processing", "complete": "Complete", "failed": "Failed"}


@dataclass(frozen=True)
class FoundOrder:
    number: str
    status: str  # processing, complete or failed
    detail: str
    title: str
    quantity: int
    total_cents: int
    placed_at: datetime
    legacy_number: str = ""
    url: str = ""  # a page of the order, when there is one

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.capitalize())


class OrderFinder(Protocol):
    def find(self, *, number: str, email: str) -> FoundOrder | None:
        """The order with this number and email (both matched ignoring case), or None."""

    def for_email(self, *, email: str) -> list[FoundOrder]:
        """Every order placed with this email, newest first."""
