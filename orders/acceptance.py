"""Accepting a hot order: idempotency on the buyer's key, the gate, then the reservation, the
order number, the intent with its history, its ACCEPTED event and its outbox row, all in one
statement on PostgreSQL (ACCEPT_SQL) or one short ORM transaction elsewhere. The task message
leaves through the outbox's relay, not from the request."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from legacy_client.references import reference_for_key
from orders.cards import card_seal
from orders.gate import gate_check, soldout_leased
from orders.inputs import OrderInput
from orders.lifecycle import ACCEPTED_DETAIL, order_accepted_record, order_event_fields
from orders.models import HotOrder, OutboxMessage
from orders.selectors import order_by_key
from orders.services import (
    IdempotencyKeyReused,
    OrderRefused,
    PlacedByMonolith,
    SoldOut,
    StockChanging,
    Throttled,
    allocation_refusal,
    allocation_reserve,
    hot_product_refusal,
)
from shop.fingerprints import fingerprint_renew
from shop.models import BuyNowRefusal, PlacedOrder
from tracing.context import current_carrier, current_xray_trace_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    order: HotOrder
    replayed: bool


def status_url(*, category: str, product: str, number: str, token: str) -> str:
    """The status URL lives under the product's prefix, so the edge sends it to the hot path."""
    return f"/shop/{category}/{product}/orders/{number}/{token}"


def order_body_matches(order: HotOrder, data: OrderInput, *, product_slug: str) -> bool:
    """Whether `data` is the body `order` was accepted for; a fingerprint still in the release
    before's form (written while this release was rolled out) is renewed once recognised."""
    if not data.fingerprint_matches(order.fingerprint, product_slug=product_slug):
        return False
    fingerprint = data.fingerprint(product_slug=product_slug)
    fingerprint_renew(HotOrder.objects.filter(pk=order.pk), stored=order.fingerprint, fingerprint=fingerprint)
    order.fingerprint = fingerprint
    return True


def _replay(order: HotOrder, data: OrderInput, *, product_slug: str) -> Accepted:
    if not order_body_matches(order, data, product_slug=product_slug):
        raise IdempotencyKeyReused("This Idempotency-Key was used for another order; use a fresh key.")
    return Accepted(order=order, replayed=True)


def order_number_next() -> str:
    """The next order number (T + digits): unique and increasing, from a PostgreSQL sequence
    (no row lock held until commit) or, elsewhere, a counter row bumped in one statement."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval('orders_hot_order_number_seq')")
        else:
            cursor.execute(
                "INSERT INTO orders_ordernumbercounter (name, value) VALUES ('hot', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = orders_ordernumbercounter.value + 1 RETURNING value"
            )
        value = cursor.fetchone()[0]
    return f"T{value:06d}"  # as ACCEPT_SQL writes it


def order_draft(
    *, product: dict, idempotency_key: str, fingerprint: str, data: OrderInput, client_ip: str | None
) -> HotOrder:
    """The order as acceptance writes it, not yet saved: the card sealed, the rest plain."""
    now = timezone.now()
    return HotOrder(
        token=secrets.token_urlsafe(32),
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        product_id=product["product_id"],
        quantity=data.quantity,
        unit_price_cents=product["price_cents"],
        customer_name=data.name,
        customer_email=data.email,
        card_sealed=card_seal(data.card_number),
        card_last4=data.card_number[-4:],
        reserved_until=now + timedelta(seconds=settings.ORDERS_RESERVATION_SECONDS),
        client_ip=client_ip,
        created_at=now,
        updated_at=now,
    )


def sold_out_known(*, product: dict, idempotency_key: str) -> bool:
    """True when the buyer's answer is known to be sold out before any write or Redis call:
    this process holds the sale's sold-out lease, which shows the key never had an order
    (orders.gate), and the sale is open. Most of a sold-out stampede is answered so; an
    order on a sale with units left costs one dictionary lookup here."""
    return (
        soldout_leased(allocation_id=product["allocation_id"], idempotency_key=idempotency_key)
        and hot_product_refusal(product) is None
    )


def order_accept(*, product: dict, idempotency_key: str, data: OrderInput, client_ip: str | None = None) -> Accepted:
    """Accepts an order for a hot product, or returns the first answer for a replayed key.

    The intent with its key (unique), the reservation, the number, the stage history, the
    ACCEPTED event and the outbox row are written at once (one statement on PostgreSQL, one
    short transaction elsewhere): one commit, and the answer. The workers' relay publishes
    the task message from the outbox (`orders.outbox`), so the order cannot be lost.
    """
    # The refusals known without a write: the product as cached, and a sold-out figure the
    # last refused reservation left in the cache (answered without touching the allocation
    # row the buyers fight over, and not counted by the throttle: the answer is the same
    # for everybody and costs nothing). The first answer to a key stands even if the sale
    # has ended or sold out since, so a refusal looks for the key first.
    refusal = hot_product_refusal(product)
    if refusal is not None:
        return _replay_or_refuse(refusal, idempotency_key=idempotency_key, data=data, product_slug=product["slug"])
    try:
        gate_check(
            allocation_id=product["allocation_id"],
            quantity=data.quantity,
            idempotency_key=idempotency_key,
            client_ip=client_ip,
            email=data.email,
        )
    except (SoldOut, Throttled, StockChanging) as refusal:
        if isinstance(refusal, SoldOut) and refusal.unseen:
            raise  # this key never had an order: nothing to replay (nor a fingerprint to take)
        return _replay_or_refuse(refusal, idempotency_key=idempotency_key, data=data, product_slug=product["slug"])

    fingerprint = data.fingerprint(product_slug=product["slug"])
    order = order_draft(
        product=product, idempotency_key=idempotency_key, fingerprint=fingerprint, data=data, client_ip=client_ip
    )
    allocation_id = product["allocation_id"]
    try:
        if not _accept_in_one_statement():
            _order_insert_reserving_atomically(order, allocation_id=allocation_id, product_slug=product["slug"])
        elif connection.in_atomic_block:  # a savepoint, so that a used key undoes only this
            with transaction.atomic():
                _order_insert_reserving(order, allocation_id=allocation_id, product_slug=product["slug"])
        else:
            _order_insert_reserving(order, allocation_id=allocation_id, product_slug=product["slug"])
    except IntegrityError:
        # A request with the same key committed first: answer as it did.
        existing = order_by_key(idempotency_key=idempotency_key)
        if existing is None:
            raise
        return _replay(existing, data, product_slug=product["slug"])
    except OrderRefused as refusal:
        return _replay_or_refuse(refusal, idempotency_key=idempotency_key, data=data, product_slug=product["slug"])

    # Nothing more before the 202: the workers' relay publishes the outbox row, and the
    # buyer's status read model fills from the database on its first read.
    return Accepted(order=order, replayed=False)


def _replay_or_refuse(refusal: OrderRefused, *, idempotency_key: str, data: OrderInput, product_slug: str) -> Accepted:
    """The first answer when the key was accepted before (it stands even if the sale has
    ended or sold out since); PlacedByMonolith when the monolith answered it for good (placed
    its order, or had its card declined); otherwise raises the refusal. One round trip asks."""
    reference = reference_for_key(idempotency_key)
    with connection.cursor() as cursor:  # the common case, a fresh key, costs three index probes
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM orders_hotorder WHERE idempotency_key = %s),"
            " EXISTS (SELECT 1 FROM shop_placedorder WHERE reference = %s)"
            " OR EXISTS (SELECT 1 FROM shop_buynowrefusal WHERE reference = %s)",
            [idempotency_key, reference, reference],
        )
        seen, answered_by_monolith = cursor.fetchone()
    existing = order_by_key(idempotency_key=idempotency_key) if seen else None
    if existing is not None:
        return _replay(existing, data, product_slug=product_slug)
    if answered_by_monolith:
        raise PlacedByMonolith("The monolith answered this key's order.")
    raise refusal


# One statement, so one implicit transaction with no round trip inside it: the allocation's
# row, the one every buyer waits for, is locked by the UPDATE and released by the commit
# that follows it on the server. The UPDATE's WHERE clause is re-checked after a concurrent
# writer commits (no oversell); a key already used fails the INSERT and undoes it all. The
# sale's window is judged by the database's clock (`now()`), the same for every web host.
ACCEPT_SQL = """
WITH allocation AS (
    UPDATE orders_saleallocation SET reserved = reserved + %(quantity)s
     WHERE id = %(allocation_id)s AND is_hot AND allocated >= reserved + sold + %(quantity)s
       AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
       AND EXISTS (SELECT 1 FROM shop_product p WHERE p.id = orders_saleallocation.product_id
                   AND p.is_active AND p.deleted_at IS NULL)
       -- Not a key the monolith answered for good while the route was off, its order placed or
       -- its card declined (PlacedByMonolith): its first answer stands.
       AND NOT EXISTS (SELECT 1 FROM shop_placedorder o WHERE o.reference = %(monolith_reference)s)
       AND NOT EXISTS (SELECT 1 FROM shop_buynowrefusal r WHERE r.reference = %(monolith_reference)s)
    RETURNING id
), counter AS (
    SELECT nextval('orders_hot_order_number_seq') AS value FROM allocation
), numbered AS (
    SELECT 'T' || CASE WHEN value < 1000000 THEN lpad(value::text, 6, '0') ELSE value::text END AS number
      FROM counter
), hot_order AS (
    INSERT INTO orders_hotorder (
        number, token, idempotency_key, fingerprint, product_id, quantity, unit_price_cents,
        customer_name, customer_email, card_sealed, card_last4, status, stage, reservation,
        reserved_until, legacy_number, attempts, last_error, client_ip, created_at, updated_at,
        claimed_by)
    SELECT number, %(token)s, %(idempotency_key)s, %(fingerprint)s,
        %(product_id)s, %(quantity)s, %(unit_price_cents)s, %(customer_name)s, %(customer_email)s,
        %(card_sealed)s, %(card_last4)s, %(status)s, %(stage)s, %(reservation)s, %(reserved_until)s,
        '', 0, '', %(client_ip)s, %(now)s, %(now)s, ''
      FROM numbered
    RETURNING id, number
), history AS (
    INSERT INTO orders_orderstageevent (order_id, stage, detail, at)
    SELECT id, %(stage)s, %(detail)s, %(now)s FROM hot_order
), outbox AS (
    INSERT INTO orders_outboxmessage (order_id, created_at, publish_attempts, last_error, trace_context)
    SELECT id, %(now)s, 0, '', %(trace_context)s::jsonb FROM hot_order
), accepted_event AS (
    -- The log's ACCEPTED event, built by orders.lifecycle as event_append would write it; the
    -- number is known only here. xid and position are the columns' defaults, as for event_append.
    INSERT INTO events_event (uuid, time, source, detail_type, type, subtype, status, data, resources, trace_id)
    SELECT %(event_uuid)s, %(now)s, %(event_source)s, %(event_detail_type)s, %(event_type)s, %(event_subtype)s,
        %(event_status)s, %(event_data)s::jsonb || jsonb_build_object('number', number), jsonb_build_array(number),
        %(trace_id)s
      FROM hot_order
)
SELECT id, number FROM hot_order
"""


def _accept_in_one_statement() -> bool:
    return connection.vendor == "postgresql"


def accept_params(order: HotOrder, *, allocation_id: int, product_slug: str) -> dict:
    """ACCEPT_SQL's parameters for one order (the benchmark runs the same statement with them)."""
    params = {
        field: getattr(order, field)
        for field in (
            "token",
            "idempotency_key",
            "fingerprint",
            "product_id",
            "quantity",
            "unit_price_cents",
            "customer_name",
            "customer_email",
            "card_sealed",
            "card_last4",
            "status",
            "stage",
            "reservation",
            "reserved_until",
            "client_ip",
        )
    }
    params.update(
        allocation_id=allocation_id,
        now=order.created_at,
        detail=ACCEPTED_DETAIL,
        monolith_reference=reference_for_key(order.idempotency_key),
    )
    params["trace_id"] = current_xray_trace_id()
    params["trace_context"] = json.dumps(current_carrier())
    event = order_event_fields(order, from_stage=None, detail=ACCEPTED_DETAIL, product=product_slug)
    params.update(
        event_uuid=uuid.uuid4(),
        event_data=json.dumps(event.pop("data")),
        **{f"event_{name}": value for name, value in event.items() if name != "resources"},
    )
    return params


def _order_insert_reserving(order: HotOrder, *, allocation_id: int, product_slug: str) -> None:
    """PostgreSQL: the whole acceptance in ACCEPT_SQL. Raises the allocation's refusal."""
    with connection.cursor() as cursor:
        cursor.execute(ACCEPT_SQL, accept_params(order, allocation_id=allocation_id, product_slug=product_slug))
        row = cursor.fetchone()
    if row is None:
        raise allocation_refusal(allocation_id=allocation_id)
    order.pk, order.number = row
    order._state.adding = False
    order._state.db = connection.alias


def _order_insert_reserving_atomically(order: HotOrder, *, allocation_id: int, product_slug: str) -> None:
    """Other databases: the same writes through the ORM in one short transaction. Raises the
    allocation's refusal."""
    try:
        with transaction.atomic():
            order.number = order_number_next()
            order.save(force_insert=True)
            order_accepted_record(order, product=product_slug)
            OutboxMessage.objects.create(order=order, created_at=order.created_at, trace_context=current_carrier())
            reference = reference_for_key(order.idempotency_key)
            if (
                PlacedOrder.objects.filter(reference=reference).exists()
                or BuyNowRefusal.objects.filter(reference=reference).exists()
            ):
                raise PlacedByMonolith("The monolith answered this key's order.")
            # Last, just before the commit: the allocation's row is the one every buyer
            # waits for, so its lock is held for this UPDATE and the COMMIT only. A buyer who
            # loses the race rolls all of the above back (its number is skipped, not reused).
            allocation_reserve(allocation_id=allocation_id, quantity=order.quantity)
    except (OrderRefused, IntegrityError):
        order.pk = order.number = None
        raise
