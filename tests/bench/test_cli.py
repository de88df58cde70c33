"""The benchmark commands' shared tail: figures written and printed alike, and a stack that is
stopped whatever the measurement does."""

import json
from datetime import UTC, datetime

import pytest

from bench import cli
from bench.stack import Stack


def test_figures_print_writes_what_it_prints(tmp_path, capsys):
    path = tmp_path / "figures.json"
    at = datetime(2026, 12, 3, tzinfo=UTC)
    text = cli.figures_print({"b": 2, "a": 1, "at": at}, path)
    printed = capsys.readouterr().out
    assert printed == text + "\n"
    assert path.read_text() == text
    assert list(json.loads(text)) == ["a", "at", "b"]
    assert json.loads(text)["at"] == str(at)


def test_figures_print_without_a_path_only_prints(tmp_path, capsys):
    cli.figures_print({"a": 1})
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    assert list(tmp_path.iterdir()) == []


def test_stack_ready_stops_the_stack_when_the_measurement_fails(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(Stack, "prepare", lambda self: calls.append("prepare"))
    monkeypatch.setattr(Stack, "django_setup", lambda self: calls.append("django_setup"))
    monkeypatch.setattr(Stack, "stop_all", lambda self: calls.append("stop_all"))
    with pytest.raises(RuntimeError), cli.stack_ready(tmp_path / "out") as stack:
        assert stack.out == (tmp_path / "out").resolve()
        calls.append("measure")
        raise RuntimeError("the measurement failed")
    assert calls == ["prepare", "django_setup", "measure", "stop_all"]


def test_stack_ready_stops_the_stack_when_preparing_fails(tmp_path, monkeypatch):
    calls = []

    def prepare(self):
        raise OSError("no PostgreSQL")

    monkeypatch.setattr(Stack, "prepare", prepare)
    monkeypatch.setattr(Stack, "stop_all", lambda self: calls.append("stop_all"))
    with pytest.raises(OSError), cli.stack_ready(tmp_path / "out"):
        pytest.fail("the body must not run")
    assert calls == ["stop_all"]
