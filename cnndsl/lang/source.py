"""Source text and spans: where a thing was written, and how to show it to a person."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EXCERPT_WIDTH = 100  # characters of a long source line shown around the caret
_LONE_CR = re.compile(r"\r(?!\n)")
# what a terminal would act on rather than show: C0/C1 controls, DEL, bidirectional controls
_SHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def normalise(text: str) -> str:
    """Text as editors write it, made plain: a UTF-8 byte-order mark (Windows editors) dropped,
    and a carriage return alone (classic Mac line endings) read as a line break. CRLF stays: the
    grammar reads it, and fmt keeps it."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return _LONE_CR.sub("\n", text) if "\r" in text else text


@dataclass(frozen=True)
class SourceFile:
    """A spec's text and the path it came from (``<string>`` when it had none)."""

    path: str
    text: str
    lines: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # split at "\n" only, as the lexer counts lines (str.splitlines also breaks at \x0b, \x0c,
        # \x1c-\x1e, \x85, \u2028 and \u2029, which would misplace every excerpt after one)
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        object.__setattr__(self, "lines", tuple(line.rstrip("\r") for line in lines))

    def line(self, number: int) -> str:
        """The 1-based line ``number``, without its line ending ('' past the end)."""
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return ""


@dataclass(frozen=True)
class Span:
    """A 1-based, end-exclusive range of one source file."""

    source: SourceFile = field(repr=False, compare=False)
    line: int
    col: int
    end_line: int
    end_col: int

    @property
    def location(self) -> str:
        return f"{self.source.path}:{self.line}:{self.col}"

    def excerpt(self) -> str:
        """The source line with a caret (or a run of carets) under the span."""
        text = _SHOWN.sub("\ufffd", self.source.line(self.line).replace("\t", " "))
        width = self.end_col - self.col if self.end_line == self.line else len(text) - self.col + 1
        width = max(1, min(width, EXCERPT_WIDTH // 2))
        start = 0
        if len(text) > EXCERPT_WIDTH:  # show a window around the caret
            start = max(0, min(self.col - 1 - EXCERPT_WIDTH // 3, len(text) - EXCERPT_WIDTH))
            text = ("..." if start else "") + text[start:start + EXCERPT_WIDTH] + \
                ("..." if start + EXCERPT_WIDTH < len(text) else "")
            start -= 3 if start else 0
        gutter = f"{self.line:>5} | "
        pad = " " * (len(gutter) - 2) + "| "
        return f"{gutter}{text}\n{pad}{' ' * (self.col - 1 - start)}{'^' * width}"


def span_of(source: SourceFile, meta) -> Span:
    """A span from a lark ``meta`` or token (anything with line/column/end_line/end_column)."""
    line = getattr(meta, "line", None)
    if line is None:
        return Span(source, 1, 1, 1, 2)
    col = getattr(meta, "column", 1)
    end_line = getattr(meta, "end_line", line) or line
    end_col = getattr(meta, "end_column", col + 1) or col + 1
    return Span(source, line, col, end_line, end_col)
