"""The legacy API's request and response shapes: validation of form only, no business rules."""

from __future__ import annotations

import re

from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from legacy_api.models import Hold, Order, OrderLine
from legacy_api.payments import card_number_normalise, card_number_problem
from shop.order_input import text_is_clean, validate_email

MAX_LINES = 50
MAX_QUANTITY = 1000
# A product's price is a PositiveIntegerField: the most a unit can be sold at.
MAX_UNIT_PRICE_CENTS = 2_147_483_647
# A sale's allocation can be far larger than one order.
MAX_HOLD_QUANTITY = 1_000_000
REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: not "3", not 3.0, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictStringMixin:
    """A JSON string only: DRF's CharField would take 12345 or 4242424242424242 as their digits."""

    default_error_messages = {"not_a_string": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    """An email address as the shop checks it on every origin (shop.order_input.validate_email),
    in place of DRF's, which takes control characters in a quoted local part and any code point
    from U+00A1 up as a letter of the domain."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, EmailValidator)] + [validate_email]


class CleanCharField(StrictCharField):
    """Free text a person writes, held to the shop's one rule for it (shop.order_input.text_is_clean),
    checked as sent but for spaces and tabs at either end: trimming would quietly drop a vertical
    tab or a U+2028 there. Format characters stay allowed here, as they always were: the shop
    refuses them at its own doors, and an order it accepted before it did must still be placed."""

    default_error_messages = {"unclean": "Letters, digits and punctuation only."}

    def to_internal_value(self, data):
        if isinstance(data, str) and not text_is_clean(data.strip(" \t"), format_characters=True):
            self.fail("unclean")
        return super().to_internal_value(data)


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictRegexField(StrictStringMixin, serializers.RegexField):
    pass


class CustomerSerializer(serializers.Serializer):
    # min_length only states in the schema what refusing a blank value already enforces.
    name = CleanCharField(min_length=1, max_length=200)
    email = StrictEmailField(min_length=1, max_length=254)


class LineRequestSerializer(serializers.Serializer):
    product = StrictSlugField(max_length=200, help_text="The product's slug.")
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price_cents = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=MAX_UNIT_PRICE_CENTS,
        help_text=(
            "The price per unit the buyer agreed to, in cents: charged as sent, whatever the product's "
            "price is when the order is placed. Left out: the product's price then."
        ),
    )


# What card_number_problem accepts once the value is trimmed, less Luhn's check: spaces and
# dashes between 12 to 19 digits. The 40-character limit applies after trimming, so it is
# checked in validate_card_number, out of the schema, which would refuse padding the API takes.
CARD_NUMBER_MAX = 40
CARD_NUMBER_PATTERN = r"^\s*[- ]*(?:[0-9][- ]*){12,19}\s*$"


@extend_schema_field(
    {"type": "string", "pattern": CARD_NUMBER_PATTERN, "description": "Digits; spaces and dashes are ignored."}
)
class CardNumberField(StrictCharField):
    pass


class PaymentSerializer(serializers.Serializer):
    card_number = CardNumberField()

    def validate_card_number(self, value: str) -> str:
        if len(value) > CARD_NUMBER_MAX:
            raise serializers.ValidationError(f"Ensure this field has no more than {CARD_NUMBER_MAX} characters.")
        problem = card_number_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return card_number_normalise(value)


def reference_field(help_text: str, **kwargs) -> StrictRegexField:
    return StrictRegexField(
        REFERENCE_PATTERN,
        max_length=64,
        help_text=help_text,
        error_messages={"invalid": "Use 1 to 64 letters, digits, '.', '_', ':' or '-'."},
        **kwargs,
    )


class OrderRequestSerializer(serializers.Serializer):
    reference = reference_field(
        "The caller's idempotency key: the same reference and body again returns the same order; "
        "the same reference with another body is refused (422)."
    )
    customer = CustomerSerializer()
    # A ListField, so that the schema states the bounds (minItems, maxItems) it enforces.
    lines = serializers.ListField(child=LineRequestSerializer(), min_length=1, max_length=MAX_LINES)
    payment = PaymentSerializer()
    hold = reference_field(
        "A hold to draw the units of its product from (and only from); not part of the order's identity.",
        required=False,
        allow_null=True,
    )
    place_before = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When the caller stops waiting for the answer: a request that reaches the backend later "
        "places nothing (408 expired), so a lookup made after it may be trusted. Not part of the order's identity.",
    )


class OrderLineSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product_slug")
    line_total_cents = serializers.IntegerField(source="total_cents")

    class Meta:
        model = OrderLine
        fields = ["product", "title", "quantity", "unit_price_cents", "line_total_cents"]


class OrderCustomerSerializer(serializers.Serializer):
    name = serializers.CharField(source="customer_name")
    email = serializers.EmailField(source="customer_email")


class OrderSerializer(serializers.ModelSerializer):
    customer = OrderCustomerSerializer(source="*")
    lines = OrderLineSerializer(many=True)
    hold = serializers.SlugRelatedField(
        slug_field="reference",
        read_only=True,
        allow_null=True,
        help_text="The caller's hold its units came from, or null (also when the hold is another caller's).",
    )

    def to_representation(self, order: Order) -> dict:
        data = super().to_representation(order)
        # A hold answers to its caller only: an order shown to another caller names none.
        if order.hold is not None and order.hold.caller != self.context.get("caller"):
            data["hold"] = None
        return data

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "reference",
            "status",
            "total_cents",
            "customer",
            "card_last4",
            "lines",
            "hold",
            "created_at",
            "processing_ms",
        ]


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(
        help_text="invalid, unauthenticated, forbidden, not_found, method_not_allowed, out_of_stock, in_progress, "
        "reference_reused, card_declined, expired, over_capacity, unavailable, …"
    )
    detail = serializers.CharField(required=False)
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Messages by field path, such as "lines.0.quantity" or "customer.email".',
    )


class OutOfStockSerializer(ErrorSerializer):
    product = serializers.CharField(help_text="The slug of the product that is short.")
    available = serializers.IntegerField()


class CallerStatsSerializer(serializers.Serializer):
    inflight = serializers.IntegerField()
    peak_inflight = serializers.IntegerField()
    shed = serializers.IntegerField(help_text="This caller's order requests refused with 503.")


class StatsSerializer(serializers.Serializer):
    capacity = serializers.IntegerField(help_text="Orders the service works on at once (LEGACY_CAPACITY).")
    inflight = serializers.IntegerField(help_text="Order requests being answered now.")
    peak_inflight = serializers.IntegerField(
        help_text="The most order requests ever in flight at once, before shedding."
    )
    shed = serializers.IntegerField(help_text="Order requests refused with 503 because every slot was taken.")
    callers = serializers.DictField(
        child=CallerStatsSerializer(),
        help_text="The same figures for each caller, named by the token it presents.",
    )
    authorisations = serializers.IntegerField(help_text="Card authorisations ever given (one per order).")
    voids = serializers.IntegerField(help_text="Authorisations voided because their order failed after them.")
    declines = serializers.IntegerField()


class HoldRequestSerializer(serializers.Serializer):
    reference = reference_field(
        "The caller's key for the hold, its own (another caller's holds are not seen): the same reference and "
        "body again is a replay."
    )
    product = StrictSlugField(max_length=200, help_text="The product's slug.")
    quantity = StrictIntegerField(min_value=1, max_value=MAX_HOLD_QUANTITY)


class QueryParameterMixin:
    """A query parameter sent blank is checked as sent: DRF takes a blank form value for an
    absent one, and `?status=` would list every hold instead of being refused."""

    def get_value(self, dictionary):
        return dictionary.get(self.field_name, empty)


class QueryChoiceField(QueryParameterMixin, serializers.ChoiceField):
    pass


class QuerySlugField(QueryParameterMixin, serializers.SlugField):
    pass


class HoldListQuerySerializer(serializers.Serializer):
    """What narrows a listing of the caller's holds (query parameters)."""

    status = QueryChoiceField(choices=Hold.Status.choices, required=False, help_text="Only holds in this state.")
    product = QuerySlugField(max_length=200, required=False, help_text="Only holds of this product (its slug).")


class QueryRegexField(QueryParameterMixin, serializers.RegexField):
    pass


class OrderLookupQuerySerializer(serializers.Serializer):
    """The order a caller looks for (query parameters)."""

    reference = QueryRegexField(
        REFERENCE_PATTERN,
        max_length=64,
        help_text="The reference the caller sent the order under.",
        error_messages={"invalid": "Use 1 to 64 letters, digits, '.', '_', ':' or '-'."},
    )


class HoldResizeSerializer(serializers.Serializer):
    quantity = StrictIntegerField(min_value=0, max_value=MAX_HOLD_QUANTITY, help_text="What the hold keeps from now.")


class HoldSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.slug")

    class Meta:
        model = Hold
        fields = ["reference", "product", "quantity", "requested", "status", "created_at", "updated_at"]


class StockReceiptRequestSerializer(serializers.Serializer):
    reference = reference_field("The caller's key for the receipt (its purchase order): sent again, it adds nothing.")
    quantity = StrictIntegerField(min_value=1, max_value=MAX_HOLD_QUANTITY, help_text="Units received.")


class StockSerializer(serializers.Serializer):
    product = serializers.CharField()
    on_hand = serializers.IntegerField(min_value=0)
    held = serializers.IntegerField(min_value=0, help_text="Units kept by open holds.")
    available = serializers.IntegerField(
        min_value=0, help_text="On hand less held: what an order without a hold may take."
    )
