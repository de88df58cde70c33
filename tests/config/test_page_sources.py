"""The pages' Content-Security-Policy takes scripts and styles from the shop's own files only, so
no template, nor any HTML the code writes, may carry a script or a style inline: the policy
would refuse it and the page would lose it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_OURS = {".venv", "var", "tests", "node_modules", ".git"}

INLINE = {
    "a style attribute": re.compile(r"""\sstyle\s*=\s*\\?["']""", re.I),
    "a style attribute set by a script": re.compile(r"""setAttribute\(\s*["']style["']|\.cssText\b""", re.I),
    "a style element": re.compile(r"<style[\s>]", re.I),
    "a script with no src": re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I),
    "an event handler attribute": re.compile(r"""<[a-z][^>]*\son[a-z]+\s*=\s*["']""", re.I),
}


def sources() -> list[Path]:
    """The templates, the code that writes HTML and the pages' scripts (not the tests, nor the
    benchmark's reports)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        here = Path(folder)
        if here == ROOT:
            subfolders[:] = [name for name in subfolders if name not in NOT_OURS | {"bench"}]
        # The shop's own scripts too (a script that writes a style attribute is refused as the
        # markup's is), not the vendored, minified ones.
        found += [here / name for name in files if name.endswith((".html", ".py", ".js")) and ".min." not in name]
    return sorted(found)


def test_the_pages_sources_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in sources()}
    assert "orders/templates/orders/buy_now.html" in names and "shop/admin.py" in names
    assert "shop/static/shop/sale.js" in names


@pytest.mark.parametrize("what", sorted(INLINE))
def test_no_page_carries_a_script_or_a_style_inline(what):
    pattern = INLINE[what]
    offenders = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in sources()
        for text in [path.read_text(encoding="utf-8")]
        for match in pattern.finditer(text)
    ]
    assert not offenders, f"{what}, which the pages' Content-Security-Policy refuses: {offenders}"
