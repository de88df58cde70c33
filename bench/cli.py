"""What the benchmark's own commands share: a prepared stack with Django set up on it, and
their figures written as JSON and printed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from bench.stack import Stack


@contextlib.contextmanager
def stack_ready(out: Path) -> Iterator[Stack]:
    """A stack prepared in `out` (its own database and Redis, the settings installed), with
    Django set up in this process on it; everything it started is stopped at the end."""
    stack = Stack(out.resolve())
    try:
        stack.prepare()
        stack.django_setup()
        yield stack
    finally:
        stack.stop_all()


def figures_print(figures: dict, json_path: Path | None = None) -> str:
    """The figures as JSON, written to `json_path` if given, and printed."""
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    if json_path:
        json_path.write_text(text)
    print(text)
    return text
