"""What a checkout that placed no order tells its buyer: one exception a refusal, each with the
page's HTTP status and the code the API answers with; and the earlier try that placed the order
after all."""

from __future__ import annotations

from shop.models import PlacedOrder


class CheckoutError(Exception):
    """The order was not placed; the basket is kept. `status` is the page's HTTP status.
    `settled`: the checkout's reference is done with, and the next submit is a new order; not
    so while another try under it (another tab's) may still have placed the order."""

    status = 400
    code = "invalid"
    settled = True
    # The key's first answer given again (a buy-now's declined card): `Idempotent-Replayed`.
    replayed = False

    def kept(self, in_doubt: bool) -> CheckoutError:
        """This refusal, with the reference kept while an earlier try under it is in doubt."""
        self.settled = not in_doubt
        return self

    def __init__(self, message: str, *, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class CheckoutEmpty(CheckoutError):
    code = "empty"


class CheckoutDeclined(CheckoutError):
    """Names the card's field, as the legacy API does: it is what the buyer changes."""

    status = 402
    code = "card_declined"

    def __init__(self, message: str, *, fields: dict | None = None):
        super().__init__(message, fields=fields or {"payment.card_number": ["This card was declined."]})


class CheckoutOutOfStock(CheckoutError):
    status = 409
    code = "out_of_stock"


BASKET_CHANGED = (
    "Your basket changed since this page was shown (in another tab, or a price changed). "
    "Please check it below and confirm your order again."
)


class CheckoutBasketChanged(CheckoutError):
    """The basket is not the one the checkout page showed (another tab changed it, or a price
    changed): nothing is sent, and the buyer confirms the basket as it is now."""

    status = 409
    code = "basket_changed"


# Another browser's checkout, as a rule; or one of an earlier session of this browser (signed out
# and in again since) whose answer is still awaited.
BASKET_ORDERED_ELSEWHERE = (
    "Your basket is being ordered in another browser signed in to your account right now, or an "
    "earlier checkout of it is still waiting for its answer, so this order was not sent: it would "
    "have been a second one. Look in My orders in a minute, then order what is still in your basket."
)


class CheckoutBasketOrderedElsewhere(CheckoutError):
    """Another browser signed in to the account is placing the basket's order, under its own
    reference (or its outcome is in doubt): nothing is sent, and the reference is kept."""

    status = 409
    code = "basket_ordered_elsewhere"
    settled = False


class CheckoutReferenceReused(CheckoutError):
    status = 409
    code = "reference_reused"


class CheckoutPlacedEarlier(Exception):
    """An earlier try of this checkout placed the order after all (its answer was lost: a
    timeout), and the buyer changed the card or the basket since, so the legacy API refused the
    reference for the new body. That order is the checkout's: no second one is placed."""

    def __init__(self, order: PlacedOrder, *, theirs: bool, basket_kept: bool):
        super().__init__(order.number)
        self.order = order
        # The buyer who started the checkout checks out now: the order is theirs to be shown.
        self.theirs = theirs
        self.basket_kept = basket_kept  # the basket holds more than that order took from it


class CheckoutUnavailable(CheckoutError):
    """The order service is down or over capacity: nothing is known to be placed, and the
    same reference is sent again on the next try, so a retry cannot place it twice."""

    status = 503
    code = "unavailable"


class CheckoutInProgress(CheckoutUnavailable):
    """Another try of this checkout, with the same basket and card (the first submit of a double
    click, another tab's), is being placed right now: this one placed nothing, and that one's
    outcome is the checkout's. The buyer is shown it once it is known (checkout_progress)."""

    status = 202
    code = "in_progress"
