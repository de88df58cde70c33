"""Checkout: the storefront's orders placed with the legacy API over HTTP, once per reference.

A checkout's reference is minted before its first submit and sent again on every retry until
an answer settles it, so a retry never orders twice; a retry whose body changed after a lost
answer is given the order its earlier try placed (_earlier_try_placed). The monolith's buy-now
places its one-product orders the same way, under the buyer's Idempotency-Key."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

import legacy_client
from legacy_client import OrderAnswer, Outcome
from shop.checkout_errors import (
    BASKET_CHANGED,
    BASKET_ORDERED_ELSEWHERE,
    CheckoutBasketChanged,
    CheckoutBasketOrderedElsewhere,
    CheckoutDeclined,
    CheckoutEmpty,
    CheckoutError,
    CheckoutInProgress,
    CheckoutOutOfStock,
    CheckoutPlacedEarlier,
    CheckoutReferenceReused,
    CheckoutUnavailable,
)
from shop.checkout_events import checkout_refused_append
from shop.checkout_pending import (
    BasketChangedMeanwhile,
    BasketOrderedElsewhere,
    pending_checkout_buyer,
    pending_checkout_note,
    pending_checkout_settle,
    pending_checkout_try_ended,
    pending_checkout_try_of,
)
from shop.delivery import Delivery
from shop.models import Basket, BasketLine, PendingCheckout, PlacedOrder, Product
from shop.receipts import checkout_found_record, checkout_placed_answer, placed_order_record
from shop.selectors import basket_signature
from shop.services import basket_take_placed

# The longest wait a buyer is asked to take before trying again; past it, "in a moment".
RETRY_TOLD_MAX_SECONDS = 60


def retry_told(retry_after: float | None) -> str:
    """When to try again, as the buyer is told it. A proxy's Retry-After may be a fraction or a
    date far ahead: told in whole seconds, at least one, and never as a wait no buyer would take."""
    seconds = max(1, math.ceil(retry_after or 0))
    if not retry_after or seconds > RETRY_TOLD_MAX_SECONDS:
        return " Please try again in a moment."
    return f" Please try again in {seconds} second{'s' if seconds > 1 else ''}."


def _unavailable_why(answer: OrderAnswer) -> str:
    """What kept the order service from taking the order, as the buyer is told it: load only
    when that is what it said."""
    if answer.outcome == Outcome.NOT_SENT:
        return "We could not reach our order service, so your order was not sent."
    if answer.outcome == Outcome.UNKNOWN:
        return "Our order service did not answer in time: if your order went through, trying again shows it."
    if answer.overloaded:
        return "Our order service is very busy right now and could not take your order."
    return "Our order service cannot take orders just now."


def _out_of_stock_message(data: dict) -> str:
    product = data.get("product") or (data.get("fields") or {}).get("product")
    if isinstance(product, list):
        product = ", ".join(str(p) for p in product)
    title = None
    if isinstance(product, str):
        title = Product.objects.filter(slug=product).values_list("title", flat=True).first() or product
    available = data.get("available")
    if title and type(available) is int and available > 0:
        # Short, not sold out: the buyer can still have what is left.
        left = f"only {available} is left" if available == 1 else f"only {available} are left"
        return f"Sorry, {left} of {title}, fewer than your basket holds. Please change your basket."
    if title:
        return f"Sorry, {title} sold out before we could place your order. Please change your basket."
    return "Sorry, part of your basket sold out before we could place your order. Please change your basket."


def checkout_place(
    *,
    basket: Basket,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    reference: str,
    started_by_buyer: bool = True,
    basket_shown: str = "",
) -> PlacedOrder:
    """Places the basket's order with the legacy API and records the receipt.

    No database transaction is held during the HTTP call: the order service writes stock
    in its own transaction and may take seconds under load. `started_by_buyer` says whether
    whoever checks out now started the reference (checkout_reference_is_buyers): an order an
    earlier try placed under it is theirs only then. `basket_shown` is the signature of the
    basket the page showed (shop.selectors.basket_signature): another basket is not ordered.
    """
    lines = list(BasketLine.objects.filter(basket=basket).select_related("product").order_by("pk"))
    # Refused here, before any call: the reference is settled only if no earlier try is in doubt.
    in_doubt = PendingCheckout.objects.filter(reference=reference).exists()
    if not lines:
        raise CheckoutEmpty("Your basket is empty.").kept(in_doubt)
    if basket_shown and basket_shown != basket_signature(
        (line.product.slug, line.quantity, line.product.price_cents) for line in lines
    ):
        raise CheckoutBasketChanged(BASKET_CHANGED)
    gone = [line.product.title for line in lines if not line.product.is_on_sale]
    if gone:
        raise CheckoutOutOfStock(f"No longer on sale: {', '.join(gone)}. Please remove it from your basket.").kept(
            in_doubt
        )
    total = sum(line.quantity * line.product.price_cents for line in lines)
    if total > legacy_client.ORDER_TOTAL_MAX_CENTS:
        raise CheckoutError(
            f"Your basket comes to ${total / 100:,.2f}, more than one order may "
            f"(${legacy_client.ORDER_TOTAL_MAX_CENTS / 100:,.2f}): please order it in parts."
        ).kept(in_doubt)
    ordered = [{"product": line.product.slug, "quantity": line.quantity} for line in lines]
    try:
        order = _order_place(
            reference=reference,
            lines=ordered,
            prices={line.product.slug: line.product.price_cents for line in lines},
            customer=customer,
            delivery=delivery,
            card_number=card_number,
            reused_is_final=False,
            basket=basket,
        )
    except CheckoutReferenceReused:
        order, earlier_lines, theirs = _earlier_try_placed(
            reference=reference, lines=ordered, customer=customer, delivery=delivery, started_by_buyer=started_by_buyer
        )
        basket_kept = True
        if theirs:  # another's (a guest's, before someone signed in here) leaves this basket alone
            taken = basket_take_placed(basket=basket, order=order, lines=earlier_lines)
            basket_kept = BasketLine.objects.filter(basket=basket).exists() if taken is None else taken
        raise CheckoutPlacedEarlier(order, theirs=theirs, basket_kept=basket_kept) from None
    return order


def _earlier_try_placed(
    *,
    reference: str,
    lines: list[dict],
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    started_by_buyer: bool,
) -> tuple[PlacedOrder, list[dict], bool]:
    """The order an earlier try under `reference` placed, whose answer was lost, with its lines,
    recorded (for `customer`) and confirmed as that try would have done: asked of the legacy API
    once it refused the reference for another body (`lines`, this try's). Raises
    CheckoutReferenceReused when it holds no order under it (a try that died there was dropped,
    its card voided) or will not say, and CheckoutUnavailable while it cannot tell yet; each
    logged as this try's refusal."""
    answer = legacy_client.order_find(reference=reference, caller="storefront")
    if answer.retryable:
        checkout_refused_append(reference=reference, lines=lines, outcome=str(answer.outcome), retryable=True)
        raise CheckoutUnavailable(
            "Our order service could not tell yet whether your earlier try went through. Please try again "
            "in a moment: you will not be charged twice."
        )
    if not checkout_placed_answer(answer):
        checkout_refused_append(
            reference=reference, lines=lines, outcome=str(Outcome.REFERENCE_REUSED), retryable=False
        )
        if answer.outcome == Outcome.NOT_FOUND:  # nothing under it: settled, unless a try is open
            settled = pending_checkout_settle(reference=reference, unless_out=True)
            raise CheckoutReferenceReused(
                "Your basket changed since you last tried to order. Please order again."
            ).kept(not settled)
        raise CheckoutReferenceReused(
            "We could not confirm whether your earlier try went through: please look for its confirmation "
            "email before you order again."
        )
    # The try whose body it is says whose order it is (a checkout begun before its tries were
    # kept: whoever started the reference). Another's is recorded with its own buyer and delivery.
    pending = PendingCheckout.objects.filter(reference=reference).first()
    attempt = pending_checkout_try_of(pending, answer.data) if pending is not None else None
    if attempt is not None:
        buyer = customer.pk if customer is not None and customer.is_authenticated else None
        theirs = attempt["customer"] == buyer
        if not theirs:
            customer, delivery = pending_checkout_buyer(attempt), Delivery.of(attempt)
    else:
        theirs = started_by_buyer
        if not theirs:  # nothing of this buyer's goes on another's receipt
            customer, delivery = None, replace(delivery, address_line="", city="", region="", postcode="", country="")
    order, earlier = checkout_found_record(reference=reference, answer=answer, customer=customer, delivery=delivery)
    return order, earlier, theirs


def checkout_buy_now(
    *,
    product: Product,
    quantity: int,
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    reference: str,
    fingerprint: str = "",
) -> PlacedOrder:
    """Places a one-product order at once, without a basket (the monolith's buy-now); its
    request's `fingerprint` goes on a receipt the sweep records after a lost answer."""
    if quantity > product.available:
        raise CheckoutOutOfStock(_out_of_stock_message({"product": product.slug}))
    return _order_place(
        reference=reference,
        lines=[{"product": product.slug, "quantity": quantity}],
        prices={product.slug: product.price_cents},
        customer=customer,
        delivery=delivery,
        card_number=card_number,
        fingerprint=fingerprint,
    )


def _order_place(
    *,
    reference: str,
    lines: list[dict],
    customer: AbstractBaseUser | None,
    delivery: Delivery,
    card_number: str,
    prices: dict[str, int],
    reused_is_final: bool = True,
    fingerprint: str = "",
    basket: Basket | None = None,
) -> PlacedOrder:
    """Places the order with the legacy API over HTTP and records the receipt, or raises a
    CheckoutError saying why not. A reference refused as reused is logged as a refusal only
    when that is final (`reused_is_final`): a checkout asks first whether an earlier try of its
    own placed it (_earlier_try_placed), and logs what that tells. The checkout is noted as in
    doubt before the call, and stays so until an answer settles it (shop.checkout_sweep). Each
    line is charged at `prices` (by product slug: the prices the buyer was shown and checked),
    not at whatever the product's price is when the legacy API places it."""
    try:
        noted = pending_checkout_note(
            reference=reference,
            customer=customer,
            delivery=delivery,
            lines=lines,
            card_last4="".join(ch for ch in card_number if ch.isdigit())[-4:],
            fingerprint=fingerprint,
            basket_id=basket.pk if basket is not None else None,
        )
    except BasketOrderedElsewhere:
        raise CheckoutBasketOrderedElsewhere(BASKET_ORDERED_ELSEWHERE) from None
    except BasketChangedMeanwhile:
        raise CheckoutBasketChanged(BASKET_CHANGED) from None
    started = time.perf_counter()
    answer = legacy_client.order_place(
        reference=reference,
        name=delivery.name,
        email=delivery.email,
        lines=[{**line, "unit_price_cents": prices[line["product"]]} for line in lines],
        card_number=card_number,
    )
    processing_ms = round((time.perf_counter() - started) * 1000)
    data = answer.data
    # Not a refusal: "in progress" says another try of the same body is being placed, and that
    # try's outcome is what the log records.
    logged = answer.outcome not in (Outcome.PLACED, Outcome.IN_PROGRESS)
    if logged and (reused_is_final or answer.outcome != Outcome.REFERENCE_REUSED):
        checkout_refused_append(
            reference=reference, lines=lines, outcome=str(answer.outcome), retryable=answer.retryable
        )
    settled = True
    if not checkout_placed_answer(answer):  # a placed one is settled with its receipt
        settled = pending_checkout_try_ended(
            reference=reference, attempt=noted.attempt, outcome=answer.outcome, new=noted.new
        )
    refusal: CheckoutError | None = None
    match answer.outcome:
        case Outcome.DECLINED:
            refusal = CheckoutDeclined("Your card was declined. Please check the number or use another card.")
        case Outcome.OUT_OF_STOCK:
            refusal = CheckoutOutOfStock(_out_of_stock_message(data))
        case Outcome.INVALID:
            refusal = CheckoutError("The order service could not accept these details.", fields=answer.fields)
    if refusal is not None:
        # Not settled while another try under the reference (another tab's) is out or in doubt:
        # the next submit sends the same reference, and cannot order a second time.
        raise refusal.kept(not settled)
    match answer.outcome:
        case Outcome.REFERENCE_REUSED:
            # This checkout's reference went out with another basket (changed after a try that
            # timed out): a definite no, so the next submit is a new order under a new reference.
            raise CheckoutReferenceReused("Your basket changed since you last tried to order. Please order again.")
        case Outcome.IN_PROGRESS:
            raise CheckoutInProgress(
                "Your order is being placed: it was sent twice, and is placed once. This page shows it "
                "as soon as it is placed."
            )
        case Outcome.BUSY | Outcome.NOT_SENT | Outcome.UNKNOWN:
            wait = retry_told(answer.retry_after)
            kept = " Your basket is kept, and you will not be charged twice."
            raise CheckoutUnavailable(_unavailable_why(answer) + wait + kept)
    if not checkout_placed_answer(answer):
        raise CheckoutUnavailable("Our order service gave an unexpected answer. Please try again.")
    order = placed_order_record(
        reference=reference,
        legacy=data,
        customer=customer,
        delivery=delivery,
        processing_ms=processing_ms,
        lines=lines,
        settle=basket is None,
    )
    if basket is not None:
        # A basket's checkout is settled as its lines are taken, in one transaction (its row first,
        # then the basket's, as a try is noted): until then another browser's submit of the basket
        # finds it open, and after, the lines gone (shop.checkout_pending). Unit for unit: a line
        # added in another tab meanwhile stays. Once: not when another request (another tab's, the
        # page that waits) was answered with it first.
        with transaction.atomic():
            pending_checkout_settle(reference=reference)
            basket_take_placed(basket=basket, order=order, lines=lines)
    return order
