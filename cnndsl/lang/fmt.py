"""`cnndsl fmt`: a spec rewritten in the canonical layout, from the parser's own token stream.

The layout, which the shipped specs follow:

- statements stay on the lines they were written on (`;` joins statements; a `;` that separates
  nothing goes, and so does a `\\` that continues nothing), indented two spaces per open `{`; a
  line starting with `}` as its `{` line;
- one space between arguments, words and braces, and after `,`, `;` and a label's `:`; none
  around `=` and the arithmetic operators (`width*4`), after a unary minus, inside `( )` and
  `[ ]`, or before `,`, `;` and `:`; but a `-` that starts a line (a minus, not a negative number)
  keeps one space before a number (`- 5`), or the lexer would read a negative number;
- two or more spaces before an argument, a list item or a statement (after a label's `:` or a
  `;`) are the author's alignment when a token on one of the two lines above or below starts (or
  ends) in the same column as it does (the columns of a table): the token keeps its column while the code before it
  still fits; elsewhere blanks collapse;
- a trailing comment stands at least two spaces after the code; a full-line comment is indented
  like the statements around it; comment text is kept as written;
- a line broken inside `( )` or `[ ]` goes on one column after its innermost open bracket (four
  spaces deeper when that bracket ends its line); after a `\\`, four spaces deeper;
- a run of blank lines becomes one; none at the start or end of the file or of a `{ }` body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache

from cnndsl.errors import CnnDslError
from cnndsl.lang.parse import parse, read_tokens, terminal_regexp
from cnndsl.lang.source import SourceFile, Span, normalise

INDENT, CONTINUATION, COMMENT_GAP, TAB = 2, 4, 2, 8
MAX_PASSES = 8  # each pass only narrows gaps, so the layout settles; in practice within two
ALIGN_REACH = (-2, -1, 1, 2)  # lines above and below where a shared column counts as alignment

_VALUES = frozenset({"INT", "FLOAT", "DIMS", "NAME", "STRING", "RPAR", "RSQB"})
_OPERATORS = frozenset({"+", "-", "*", "/", "//", "%"})
_NO_SPACE_BEFORE = frozenset({"COMMA", "SEMICOLON", "COLON", "RPAR", "RSQB", "EQUAL", "DOT"})
_NO_SPACE_AFTER = frozenset({"LPAR", "LSQB", "EQUAL", "DOT"})  # DOT: `from layer1.0`
_OPENS, _CLOSES = frozenset({"LPAR", "LSQB"}), frozenset({"RPAR", "RSQB"})
_KEYWORDS = frozenset({"NETWORK", "VARIANT", "INPUT", "BLOCK", "REPEAT", "_AS", "CONCAT", "SPLIT", "RESIDUAL",
                       "SHORTCUT", "GATE", "IF", "_IF", "_ELSE", "AND", "OR", "NOT", "COMPARE", "ADD", "MUL",
                       "CROP", "FROM", "OUTPUT", "TRAIN"})
_UNALIGNED = frozenset({"LBRACE", "RBRACE", "BACKSLASH"})
_BACKSLASH = re.compile(r"\\[\t \f]*\r?\n")


@dataclass(frozen=True)
class Tok:
    """A token as written: its terminal (BACKSLASH for a `\\` continuation), text and place."""

    kind: str
    text: str
    col: int  # visual column on its source line (tabs every 8)
    gap: int  # visual width of the blanks before it on its line; -1 when it starts the line


def width(text: str) -> int:
    return len(text.expandtabs(TAB))


@lru_cache(maxsize=1)
def _negative():
    """The lexer's own NEG rule: where a `-` starts a negative number rather than being a minus."""
    return re.compile(terminal_regexp("NEG"))


def tokens(text: str) -> list[Tok]:
    """Every token of a spec that parses, comments and continuations included, in order."""
    raw = sorted(read_tokens(text), key=lambda t: t.start_pos)
    lines = text.split("\n")
    out, pos = [], 0
    for tok in raw:
        for m in _BACKSLASH.finditer(text, pos, tok.start_pos):
            line = text.count("\n", 0, m.start())
            out.append(_place("BACKSLASH", "\\", lines[line], m.start() - (text.rfind("\n", 0, m.start()) + 1)))
        out.append(_place(tok.type, str(tok), lines[tok.line - 1], tok.column - 1))
        pos = tok.end_pos
    return out


def _place(kind: str, text: str, line: str, index: int) -> Tok:
    before = line[:index]
    code = before.rstrip(" \t\f")
    col = width(before)
    return Tok(kind, text, col, col - width(code) if code else -1)


@dataclass
class _Open:
    col: int  # output column of an open ( or [
    indent: int  # indentation of its line
    hanging: bool = False  # it ends its line


class _Printer:
    """Lays out tokens line by line; each source line with code gives one output line."""

    def __init__(self, align: bool) -> None:
        self.align = align
        self.lines: list[str] = []
        self.line = ""
        self.indent = self.statement_indent = self.depth = 0
        self.brackets: list[_Open] = []
        self.continued = self.blank = self.opened = False
        self.prev: Tok | None = None  # the last token on this line, comments aside
        self.prev_op = False  # it is an arithmetic operator or a unary minus
        self.prev_at = 0  # the index in self.line where it starts
        self.before_prev = ""  # the kind of the token before it on this line

    def feed(self, toks: list[Tok]) -> str:
        self.columns = _columns(toks)
        self.source_line = 0
        needless = _needless(toks)
        for i, tok in enumerate(toks):
            if tok.kind in ("_NL", "BACKSLASH"):
                self.source_line += _lines_ended(tok)
            if i in needless:
                continue
            if tok.kind == "_NL":
                self.newline(tok.text.count("\n") > 1)
            else:
                self.put(tok)
                if tok.kind == "BACKSLASH":
                    self.end_line()
                    self.continued = True
        self.end_line()
        return "".join(line + "\n" for line in self.lines)

    def newline(self, blank: bool) -> None:
        if self.brackets and self.prev is not None and self.prev.kind in _OPENS:
            self.brackets[-1].hanging = True
        self.end_line()
        self.blank = self.blank or (blank and not self.brackets)

    def end_line(self) -> None:
        if self.line:
            self.lines.append(self.line)
            self.opened = self.prev is not None and self.prev.kind == "LBRACE"
        self.line, self.prev, self.prev_op = "", None, False

    def put(self, tok: Tok) -> None:
        text = tok.text.rstrip() if tok.kind == "COMMENT" else tok.text
        if not self.line:
            self.start_line(tok)
            col = self.indent
        else:
            gap = self.gap(tok)
            col = width(self.line) + gap
            if gap and tok.gap >= 2 and self.aligned(tok):
                col = max(col, tok.col)
        self.line += " " * (col - width(self.line))
        self.prev_at = len(self.line)
        self.line += text
        self.track(tok, col)

    def start_line(self, tok: Tok) -> None:
        if self.brackets:
            top = self.brackets[-1]
            if tok.kind in _CLOSES:
                self.indent = top.indent if top.hanging else top.col
            else:
                self.indent = top.indent + CONTINUATION if top.hanging else top.col + 1
        elif self.continued:
            self.indent = self.statement_indent + CONTINUATION
        else:
            self.indent = INDENT * (self.depth - (tok.kind == "RBRACE"))
            self.statement_indent = self.indent
            if self.blank and self.lines and not self.opened and tok.kind != "RBRACE":
                self.lines.append("")
        self.blank = self.continued = False

    def aligned(self, tok: Tok) -> bool:
        """Whether blanks before ``tok`` are the author's alignment: a column of a table, that is a
        column where a token also starts on a nearby line (comments always keep theirs)."""
        if tok.kind == "COMMENT":
            return True
        if not self.align or tok.kind in _UNALIGNED or self.prev.kind in _UNALIGNED | _KEYWORDS:
            return False
        edges = {("start", tok.col), ("end", tok.col + width(tok.text))}
        return any(edges & self.columns.get(self.source_line + d, set()) for d in ALIGN_REACH)

    def gap(self, tok: Tok) -> int:
        """Spaces between the previous token and ``tok`` in the canonical layout."""
        prev = self.prev
        if tok.kind == "COMMENT":
            return COMMENT_GAP
        if prev is None:
            return 1
        if prev.text == "-" and prev.kind != "NEG" and _negative().match(self.line + tok.text, self.prev_at):
            return 1  # `- 5`: the minus stays a minus
        if tok.kind in _NO_SPACE_BEFORE or prev.kind in _NO_SPACE_AFTER or self.prev_op:
            return 0
        if tok.text in _OPERATORS and tok.kind != "NEG" and prev.kind in _VALUES:
            return 0  # a binary operator
        if tok.kind == "LPAR" and (prev.kind == "CALLNAME" or prev.kind == "NAME" and self.before_prev in (
                "BLOCK", "NETWORK")):
            return 0  # max(a, b); block NAME(params); network NAME(params)
        return 1

    def track(self, tok: Tok, col: int) -> None:
        kind = tok.kind
        if kind == "COMMENT":
            return
        if kind == "LBRACE":
            self.depth += 1
        elif kind == "RBRACE":
            self.depth -= 1
        elif kind in _OPENS:
            self.brackets.append(_Open(col, self.indent))
        elif kind in _CLOSES:
            self.brackets.pop()
        self.prev_op = tok.text in _OPERATORS
        self.before_prev = self.prev.kind if self.prev is not None else ""
        self.prev = tok


def _needless(toks: list[Tok]) -> set[int]:
    """The indices of the `;` that separate nothing (first or last on a statement's lines, after
    `{` or `;`, before `}` or a comment) and of the `\\` that continue nothing (before a line end).
    A `;` at the start of a continued line still separates the statements on either side."""
    needless: set[int] = set()
    line: list[int] = []  # the tokens kept so far on the statement's lines
    last = None  # the kind of the last of them that is not a `\\`
    for i, tok in enumerate([*toks, None]):
        kind = tok.kind if tok is not None else "_NL"  # the end of the file ends a line
        if kind in ("_NL", "RBRACE", "COMMENT"):
            droppable = ("SEMICOLON", "BACKSLASH") if kind == "_NL" else ("SEMICOLON",)
            while line and toks[line[-1]].kind in droppable:
                needless.add(line.pop())
        if kind == "_NL":
            line, last = [], None
        elif kind == "SEMICOLON" and last in (None, "LBRACE", "SEMICOLON"):
            needless.add(i)
        else:
            line.append(i)
            last = last if kind == "BACKSLASH" else kind
    return needless


def _lines_ended(tok: Tok) -> int:
    return tok.text.count("\n") if tok.kind == "_NL" else 1  # a `\` continuation ends one line


def _columns(toks: list[Tok]) -> dict[int, set[tuple[str, int]]]:
    """The columns where code tokens start and end, by source line (0-based)."""
    columns: dict[int, set[tuple[str, int]]] = {}
    line = 0
    for tok in toks:
        if tok.kind in ("_NL", "BACKSLASH"):
            line += _lines_ended(tok)
        elif tok.kind != "COMMENT":
            columns.setdefault(line, set()).update({("start", tok.col), ("end", tok.col + width(tok.text))})
    return columns


def format_text(text: str, path: str = "<string>", align: bool = True) -> str:
    """``text`` in the canonical layout. Raises SpecSyntaxError (path:line:col) if it does not parse.

    ``align=False`` also collapses the author's alignment in code to single spaces (comments keep
    their columns)."""
    text = normalise(text)
    before = parse(text, path)  # the author's syntax errors, with their positions
    cause = None
    try:
        out = _settled(text, align)
        if out is not None and _skeleton(parse(out, path)) == _skeleton(before):
            return out
    except Exception as exc:  # a bug in fmt, wherever it shows
        cause = exc
    # a bug in fmt (or a layout that never settles): refuse rather than change the network
    raise CnnDslError("cnndsl fmt would change what this spec means; it is left as it is", path=path,
                      hint="please report this as a bug in cnndsl fmt, with the spec") from cause


def _settled(text: str, align: bool) -> str | None:
    """``text`` printed, then its output printed again until it no longer changes (alignment kept on
    one pass may lose its neighbours on the next); None if that takes more than MAX_PASSES."""
    out = _Printer(align).feed(tokens(text))
    for _ in range(MAX_PASSES):
        again = _Printer(align).feed(tokens(out))
        if again == out:
            return out
        out = again
    return None


def _skeleton(node):
    """A syntax tree without its positions, for comparing two parses."""
    if hasattr(node, "_fields"):  # a syntax record (a NamedTuple)
        kept = [getattr(node, name) for name in node._fields]
        return (type(node).__name__, *(_skeleton(v) for v in kept if not isinstance(v, (Span, SourceFile))))
    if is_dataclass(node):
        kept = [getattr(node, f.name) for f in fields(node)]
        return (type(node).__name__, *(_skeleton(v) for v in kept if not isinstance(v, (Span, SourceFile))))
    if isinstance(node, tuple):
        return tuple(_skeleton(v) for v in node)
    return node
