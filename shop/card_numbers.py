"""Card numbers: Luhn's check digit, and card numbers found inside free text (an exception's
message, a log line) so they can be cut out of it."""

from __future__ import annotations

import re

# Luhn's doubled digit, its digits summed (0 2 4 6 8 1 3 5 7 9), as a byte for each ASCII digit.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))

# 12 to 19 ASCII digits, a space or a dash allowed between them: a card number as typed, after
# a letter, a dot or a dash too (`pan-4111…`, `card.4111…`). Not the digits of a decimal
# fraction (a duration logged as 0.028531788999998753 s), nor part of a longer number.
CARD_IN_TEXT = re.compile(r"(?<![0-9])(?<![0-9][.-])[0-9](?:[ -]?[0-9]){11,18}(?![0-9]|\.[0-9])")


def luhn_valid(digits: str) -> bool:
    """Luhn's check over ASCII digits: every second digit from the right doubled. Summed as
    bytes (an ASCII digit is its value plus 48): a third of the time of int() on each."""
    octets = digits.encode()
    kept = octets[::-2]
    return (sum(kept) - 48 * len(kept) + sum(octets[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0


def is_card_number(typed: str) -> bool:
    """Whether `typed` (digits, with spaces or dashes between them) passes Luhn's check."""
    return luhn_valid(re.sub(r"\D", "", typed))


def card_numbers_masked(text: str, *, mask=lambda digits: f"[card …{digits[-4:]}]") -> str:
    """`text` with each card number in it (one passing Luhn's check) replaced by `mask(digits)`."""

    def masked(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return mask(digits) if luhn_valid(digits) else match.group(0)

    return CARD_IN_TEXT.sub(masked, text)
