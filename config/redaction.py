"""What every process logs keeps no buyer's mailbox or card number.

A log line is read far from the shop (a terminal, a log service, a support ticket), and an
exception's text often names what failed on: a mail server's refusal names the address it
refused (`SMTPRecipientsRefused: {'ann@example.org': (550, ...)}`), a parser's error may quote
the value it could not read. The console handler's filter rewrites each record before it is
written: an email address keeps its domain (which says which mail server failed) and loses its
mailbox; a card number (12 to 19 digits passing Luhn's check) keeps its last four digits; a row
PostgreSQL quotes in an error's DETAIL (the buyer's name and address with it) is cut out.
"""

from __future__ import annotations

import logging
import re

from shop.card_numbers import card_numbers_masked

# A mailbox as people have them (not the characters of a URL's query around one), matched only
# from the start of its run of characters: linear in a line's length, however long the run.
# An apostrophe only within it (o'neil): around one, it is a quote (a mail server's refusal).
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-](?:[A-Za-z0-9._%+'-]*[A-Za-z0-9._%+-])?"
    r"@(?=[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
# PostgreSQL's DETAIL of a refused row quotes every column of it (name, email, address).
ROW_QUOTED = re.compile(r"(Failing row contains )\([^\n]*\)")


def redacted(text: str) -> str:
    """`text` with each email address's mailbox, each card number's leading digits and each row
    quoted by the database cut out."""
    text = ROW_QUOTED.sub(r"\1(…)", text)
    if "@" in text:
        text = EMAIL.sub("…@", text)
    return card_numbers_masked(text)


def holds_buyer_data(text: str) -> bool:
    """Whether `text` holds an email address or a card number (one passing Luhn's check)."""
    return redacted(text) != text


class BuyerDataFilter(logging.Filter):
    """Rewrites a record's message and its traceback's text, redacted; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: left to the handler to report
            return True
        clean = redacted(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redacted(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redacted(record.exc_text)
        if record.stack_info:
            record.stack_info = redacted(record.stack_info)
        return True
