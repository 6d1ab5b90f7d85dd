"""Terminal output: colour only on a terminal (never with NO_COLOR, https://no-color.org), and
progress lines that redraw in place and erase themselves."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import click

from cnndsl import errors

STYLES = {
    "error": {"fg": "red", "bold": True},
    "warning": {"fg": "magenta", "bold": True},
    "note": {"fg": "cyan", "bold": True},
    "hint": {"fg": "green", "bold": True},
    "location": {"bold": True},
    "caret": {"fg": "red", "bold": True},
}
PREFIXES = ("error", "warning", "note", "hint")


def color_enabled(stream: TextIO | None = None) -> bool:
    """Colour for ``stream`` (default stderr): only on a terminal, not for TERM=dumb, never when
    NO_COLOR is set to anything but the empty string."""
    stream = stream if stream is not None else sys.stderr
    if os.environ.get("NO_COLOR", ""):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, role: str, on: bool) -> str:
    return click.style(text, **STYLES[role]) if on else text


def styled(line: str, on: bool) -> str:
    """``line`` with a leading ``error:``/``warning:``/``note:``/``hint:`` (after an optional
    ``path:line:col: `` location) in its colour."""
    if not on:
        return line
    for word in PREFIXES:
        marker = f"{word}:"
        at = 0 if line.startswith(marker) else line.find(f": {marker}") + 2
        if line.startswith(marker) or at >= 2:
            location = line[:at]
            rest = line[at + len(marker):]
            return (paint(location, "location", on) if location else "") + paint(marker, word, on) + rest
    return line


class Style(errors.Style):
    """Rendered errors in terminal colours (where ``on``)."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def line(self, text: str) -> str:
        return styled(text, self.on)

    def caret(self, text: str) -> str:
        return paint(text, "caret", self.on)


def echo_err(line: str) -> None:
    """One message to stderr, its prefix coloured where colour is on."""
    on = color_enabled(sys.stderr)
    click.echo(styled(line, on), err=True, color=on)


class Progress:
    """A one-line progress report on stderr, shown only on a terminal and only once an operation
    has run for ``after`` seconds (so quick operations print nothing); erased by ``done()``."""

    def __init__(self, enabled: bool | None = None, after: float = 1.0, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.start = time.monotonic()
        self.after = after
        self.width = 0

    def show(self, text: str) -> None:
        if not self.enabled or time.monotonic() - self.start < self.after:
            return
        pad = max(0, self.width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self.width = max(self.width, len(text))

    def done(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def shown_path(path: str) -> str:
    """A path relative to the working folder when it is below it, else as it is."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
