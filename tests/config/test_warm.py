"""A server process readies Django before its first request (config.warm, run by gunicorn's
post_worker_init): the template engines, the URL resolver and the storefront's templates; what
is loaded then is kept out of the garbage collector's full collections."""

from __future__ import annotations

import gc

import pytest
from django import template
from django.template.utils import EngineHandler

from config import warm


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
