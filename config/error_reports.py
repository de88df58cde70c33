"""What a report of a failure (the error email to ADMINS, the debug page) may say of a buyer.

Django's filter hides settings, cookies and what a view marks sensitive. Every view that takes a
card (the checkout's form, the buy-now and hot-path APIs, the legacy order API) also takes the
buyer's name, email and address, and a 5xx answer to any of them is reported with its form data
and, in the HTML report, every frame's local variables. This filter hides the buyer's fields by
name wherever they are posted, and any value that holds a card number or an email address, so a
card typed into the wrong field, or carried by a local variable, is hidden too; and the
reporter cuts them out of the exception's own text, where a database error quotes the row it
refused.
"""

from __future__ import annotations

import re

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from config.redaction import holds_buyer_data, redacted

# The posted fields and the variables that carry a buyer's card or person, by a word of their
# name (`card_number`, `customer.email`, `delivery[city]`), not by letters inside another word
# or after another word (`discard`, `capacity`, `template_name`, `ip_address`: a report needs those).
BUYER_FIELDS = re.compile(
    r"(?:^|[.\[\]-])(?:card\w*|cvc|cvv|expir\w*|e?mail|name|first_name|last_name|full_name|address\w*|street|city"
    r"|region|county|postcode|postal_code|zip|phone|payment|customer\w*|buyer|delivery)(?:$|[.\[\]-])",
    flags=re.IGNORECASE,
)


class BuyerDataExceptionReporter(ExceptionReporter):
    """The report's exception values (the raised one and those it was raised from) with what
    they quote of a buyer cut out: a database error names the row it refused."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if data.get("exception_value"):
            data["exception_value"] = redacted(str(data["exception_value"]))
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = redacted(str(frame["exc_cause"]))
        return data


class BuyerDataReporterFilter(SafeExceptionReporterFilter):
    """Hides buyers' cards and persons from every report, whether DEBUG is on or off."""

    def is_active(self, request) -> bool:
        return True

    def get_post_parameters(self, request):
        if request is None:
            return {}
        cleansed = super().get_post_parameters(request).copy()
        hidden = [
            name
            for name, values in cleansed.lists()
            if BUYER_FIELDS.search(name) or any(holds_buyer_data(str(value)) for value in values)
        ]
        for name in hidden:
            cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._variable(name, value)) for name, value in variables]

    def _variable(self, name: str, value):
        if isinstance(value, str) and value == self.cleansed_substitute:
            return value
        if BUYER_FIELDS.search(name):
            return self.cleansed_substitute
        try:
            shown = repr(value)
        except Exception:
            return self.cleansed_substitute
        return self.cleansed_substitute if holds_buyer_data(shown) else value
