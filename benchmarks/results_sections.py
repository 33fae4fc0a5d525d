"""Sections of benchmarks/RESULTS.md that other scripts own, kept when the suite rewrites the file.

A section sits between ``<!-- section: NAME -->`` and ``<!-- end: NAME -->``. Its script
replaces it (or appends it); ``python -m benchmarks`` carries every such section over.

Example::

    replace_section(pathlib.Path("benchmarks/RESULTS.md"), "serve_load", "## Serving under load\\n...")
"""

from __future__ import annotations

import pathlib
import re

_SECTION = re.compile(r"<!-- section: (?P<name>[\w-]+) -->\n.*?<!-- end: (?P=name) -->\n", re.S)


def owned_sections(text: str) -> str:
    """Every owned section in ``text``, in order, as one string."""
    return "".join(m.group(0) for m in _SECTION.finditer(text))


def replace_section(path: pathlib.Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of ``path``: in place of the old one, or at the end."""
    block = f"<!-- section: {name} -->\n{body.rstrip()}\n<!-- end: {name} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- section: {re.escape(name)} -->\n.*?<!-- end: {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
