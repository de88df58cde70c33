"""A server process readies Django before its first request (config.warm, run as each server
process imports config.wsgi): the template engines, the URL resolver and the storefront's
templates; what is loaded then is kept out of the garbage collector's full collections."""

from __future__ import annotations

import gc

import pytest
from django import template
from django.template.utils import EngineHandler

from config import warm
from tests.conftest import fresh_process_output


@pytest.fixture(autouse=True)
def _collector_as_it_was():
    """The test process's own objects go back to the collector afterwards."""
    yield
    gc.unfreeze()


def test_a_fresh_process_s_template_engines_and_storefront_templates_are_built(monkeypatch):
    fresh = EngineHandler()  # as in a process that has rendered nothing yet
    monkeypatch.setattr(template, "engines", fresh)
    monkeypatch.setattr("django.template.loader.engines", fresh)
    assert fresh._engines == {}

    warm.process_warm()

    engine = fresh["django"].engine
    assert engine.template_libraries  # every app's template tags imported
    cached = {name for loader in engine.template_loaders for name in getattr(loader, "get_template_cache", {})}
    assert set(warm.WARM_TEMPLATES) <= cached


def test_a_failure_leaves_the_process_to_ready_itself_on_first_use(monkeypatch, caplog):
    monkeypatch.setattr(warm, "WARM_TEMPLATES", ("shop/no-such-template.html",))
    warm.process_warm()
    assert "was not readied" in caplog.text


def test_what_the_process_has_loaded_is_kept_out_of_full_collections():
    gc.unfreeze()
    tracked = len(gc.get_objects())
    assert gc.get_freeze_count() == 0
    warm.process_warm()
    # Everything loaded so far is frozen; a full collection now walks only what comes after.
    assert gc.get_freeze_count() > tracked // 2
    assert len(gc.get_objects()) < tracked // 10


def test_a_fresh_process_s_email_validator_is_compiled_before_its_first_order():
    """Compiled at the first address it checks, the validator's domain expression held the
    interpreter lock for about 50 ms: every page the process was serving then waited."""
    script = (
        "import django; django.setup()\n"
        "from django.core.validators import EmailValidator\n"
        "from django.utils.functional import empty\n"
        "from config.warm import process_warm\n"
        "from shop.order_input import validate_email\n"
        "lazy = EmailValidator.domain_regex\n"
        "before = lazy._wrapped is empty\n"
        "process_warm()\n"
        "print(before, lazy._wrapped is empty, type(validate_email.user_regex).__name__)\n"
    )
    # The shop's validator compiles Django's user pattern as it is imported.
    assert fresh_process_output(script) == "True False Pattern"


def test_a_fresh_process_s_email_backend_is_imported_before_its_first_order():
    """A process's first checkout imported the email backend to send the confirmation."""
    script = (
        "import sys, django; django.setup()\n"
        "from django.conf import settings\n"
        "from config.warm import process_warm\n"
        "module = settings.EMAIL_BACKEND.rpartition('.')[0]\n"
        "before = module in sys.modules\n"
        "process_warm()\n"
        "print(before, module in sys.modules)\n"
    )
    assert fresh_process_output(script) == "False True"
