"""Diagrams out of Graphviz: DOT text rendered to SVG, PNG or PDF by `dot`, and published whole.

The same spec gives the same bytes in every format: Graphviz writes no dates into SVG or PNG, and
the date that cairo stamps into a PDF is blanked in place (same length, so the offsets hold).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from cnndsl.errors import GraphError
from cnndsl.io import write_bytes

# Output extension -> Graphviz output format (None: the DOT text itself, no Graphviz needed).
FORMATS = {".dot": None, ".gv": None, ".svg": "svg", ".png": "png", ".pdf": "pdf"}
DOT_TIMEOUT_S = 300
INSTALL_HINT = ("install Graphviz (apt install graphviz, brew install graphviz, or graphviz.org/download), "
                "or write DOT text with -o NAME.dot and render it elsewhere")


def output_format(path: str) -> str | None:
    """The Graphviz format for ``path``'s extension, or None for DOT text; unknown extensions fail."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        known = ", ".join(FORMATS)
        what = f"unknown diagram format '{ext}'" if ext else "the output name has no extension to tell the format"
        raise GraphError(what, path=path, hint=f"name the output with one of {known} (or -o - for DOT on stdout)")
    return FORMATS[ext]


def render(text: str, fmt: str | None, path: str, timeout: float = DOT_TIMEOUT_S) -> tuple[bytes, list[str]]:
    """The bytes to write (the DOT text itself, or `dot -T<fmt>`'s output) and Graphviz's warnings; `dot` is
    stopped after ``timeout`` seconds."""
    if fmt is None:
        return text.encode("utf-8"), []
    program = shutil.which("dot")
    if program is None:
        raise GraphError(f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH",
                         path=path, hint=INSTALL_HINT)
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphError(f"Graphviz took more than {timeout:g} s to lay out the diagram", path=path,
                         hint="draw fewer boxes with --depth 1 or --depth 2") from None
    except OSError as exc:
        raise GraphError(f"cannot run {program}: {exc.strerror}", path=path, hint=INSTALL_HINT) from None
    detail = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if done.returncode != 0 or not done.stdout:
        raise GraphError(f"Graphviz's dot failed (exit {done.returncode}): {detail[-1] if detail else 'no output'}",
                         path=path, hint="write the DOT text with -o NAME.dot to see what dot was given")
    data = done.stdout
    if fmt == "pdf":  # `/CreationDate (D:20250101120000Z)` -> as many spaces: the xref offsets stay right
        data = _CREATION_DATE.sub(lambda m: b" " * len(m.group()), data, count=1)
    return data, detail


_CREATION_DATE = re.compile(rb"/CreationDate\s*\([^)]*\)")


def browser_svg(text: str, path: str, timeout: float = DOT_TIMEOUT_S) -> str:
    """SVG for a browser (the playground, Jupyter): drawn by cairo, its text as glyph outlines, so that it
    looks as the PNG does whatever fonts the browser has (plain SVG text is laid out by Graphviz with its
    own font metrics, and a browser's font leaves gaps); plain SVG where Graphviz has no cairo plugin."""
    try:
        data, _ = render(text, "svg:cairo", path, timeout)
    except GraphError as exc:
        if "took more than" in exc.message:
            raise
        data, _ = render(text, "svg", path, timeout)
    return data.decode("utf-8")


def write_diagram(text: str, path: str) -> list[str]:
    """Render DOT ``text`` in the format ``path``'s extension names and publish it at ``path``
    (cnndsl.io); returns Graphviz's warnings."""
    data, warnings = render(text, output_format(path), path)
    write_bytes(path, data, lambda exc: GraphError(f"cannot write the diagram: {exc.strerror}", path=path))
    return warnings
