"""Readies a server process before its first request (config.wsgi, as each server process
imports it).

Django builds its template engines (importing every installed app's template tags), its URL
resolver and each compiled template on first use. A worker process that has not served yet
pays for all of them in its first requests: about 0.4 s of imports and compiling on a busy
machine, a stall for the shoppers who happen to reach it first (after a deploy, a restart,
or when nginx first opens a connection to it in a rush of traffic).

Django's validators compile their regular expressions on first use too: the email
validator's domain expression (every buyer's address goes through it) took about 50 ms with
the interpreter lock held, so a process's first checkout stalled every page it was serving;
in a benchmark's stampede, the storefront's first checkouts set the shoppers' slowest pages.
The same first checkout imported the email backend and compiled the confirmation's template.

What it has loaded then lives as long as the process, and is moved out of the garbage
collector's way (`gc.freeze`): a full collection otherwise walks all of Django's objects,
about 120,000 of them, for 60-80 ms with the GIL held, and every thread of the process, each
with a shopper's request, stalls for it. Then only what requests make is collected."""

from __future__ import annotations

import gc
import logging

from django import template
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.template.loader import get_template
from django.urls import get_resolver

logger = logging.getLogger(__name__)

# The storefront's pages and the buyer's confirmation email (sent by a process's first
# checkout): compiled once here, kept by the cached template loader.
WARM_TEMPLATES = ("shop/home.html", "shop/category.html", "shop/product.html", "shop/emails/order_confirmation.txt")
# An address that takes every expression of the email validator's usual path.
WARM_EMAIL = "warm-up@example.com"


def process_warm() -> None:
    """Builds the template engines, the URL resolver and the storefront's templates. Best
    effort: what fails here is built on first use, as without it."""
    try:
        template.engines.all()
        get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views
        for name in WARM_TEMPLATES:
            get_template(name)
        validate_email(WARM_EMAIL)
        get_connection()  # imports the email backend; no connection is opened before a send
    except Exception:
        logger.warning("the process was not readied; its first requests will be", exc_info=True)
    gc.collect()  # what the start left as garbage goes now, not frozen with the rest
    gc.freeze()
