"""The plain spec (every layer written out, no blocks) as syntax records, built from the statements
without writing its text and parsing it again: the proof checks it to pair the model's weights
with the spec's layers and to compare the factored spec with, and ResNet-152's plain spec is 400
lines that lark would take 0.1 s to read. Its statements are the ones text.py writes, with the
activations text.py fuses; each argument is read by the language's own expression parser (once
per distinct text). A statement only factoring makes (a call, a repeat) or a label that needs
quoting beyond plain text is ``Unwritten``: the caller then parses the text, as it does for any
spec that is written out.
"""

from __future__ import annotations

import re

from cnndsl.errors import SpecSyntaxError
from cnndsl.importer.names import NAME
from cnndsl.importer.text import fused
from cnndsl.importer.tree import Stmt
from cnndsl.lang import syntax as S
from cnndsl.lang.parse import parse_expr
from cnndsl.lang.source import SourceFile, Span

_KWARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(?!=)(.+)\Z", re.DOTALL)
_QUOTABLE = re.compile(r"[^\"{}\n]*\Z")  # a label that a quoted label holds as plain text (no holes)


class Unwritten(Exception):
    """What the statements hold is not a plain spec's (see the module's docstring)."""


def plain_spec(stmts: list[Stmt], name: str, input_shape: tuple[int, ...], path: str) -> S.Spec:
    """The syntax of ``network NAME``, ``input SHAPE`` and the statements, as parse.py reads them."""
    b = _Builder(SourceFile(path, ""))
    head = b.span()
    shape = b.expr("x".join(str(d) for d in input_shape))
    inputs = (S.InputDecl((S.Arg(None, shape, shape.span),), b.span()),)
    return S.Spec(b.source, name, None, head, (), inputs, (), b.body(stmts), 1)


class _Builder:
    """Statements -> syntax records; every record gets a line of its own (for messages only)."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.line = 0
        self.exprs: dict[str, S.Expr] = {}

    def span(self) -> Span:
        self.line += 1
        return Span(self.source, self.line, 1, self.line, 2)

    def body(self, stmts: list[Stmt]) -> tuple[S.Stmt, ...]:
        return tuple(self.stmt(s, act) for s, act in fused(stmts))

    def stmt(self, s: Stmt, act: str | None = None) -> S.Stmt:
        span, label = self.span(), self.label(s.label)
        if s.kind == "layer":
            kind, args = (s.layer.kind, s.layer.args) if s.layer is not None else (s.name, [])
            return S.Layer(label, kind, span, tuple(self.arg(a) for a in [*args, *([act] if act else [])]), span)
        if s.kind == "group" and s.shown is None:
            return S.Group(label, self.body(s.body), span)
        if s.kind == "gate":
            return S.Gate(label, self.body(s.body), span)
        if s.kind == "residual":
            shortcut = self.body(s.shortcut) if s.shortcut else None
            name = (s.shortcut_name or "shortcut") if s.shortcut else "shortcut"
            when = self.expr(s.cond) if s.cond else None
            return S.Residual(label, self.body(s.body), name, shortcut, span, when)
        if s.kind in ("concat", "add", "mul"):
            return S.Concat(label, tuple(self.branch(b) for b in s.branches), span, "split" in s.args, s.kind,
                            "crop" in s.args)
        if s.kind == "from" and s.args and all(NAME.match(p) or p.isdigit() for p in s.args[0][1:].split(".")):
            return S.From(tuple(S.Label(p, self.span()) for p in s.args[0][1:].split(".")), span)
        raise Unwritten(f"a {s.kind} statement")

    def branch(self, stmts: list[Stmt]) -> S.Stmt:
        """A join's branch as text.py writes it: identity for none, the statement for one, a group
        for several."""
        if not stmts:
            span = self.span()
            return S.Layer(None, "identity", span, (), span)
        if len(stmts) == 1:
            return self.stmt(stmts[0])
        return S.Group(None, self.body(stmts), self.span())

    def label(self, text: str | None) -> S.Label | None:
        if text is None:
            return None
        if NAME.match(text):
            return S.Label(text, self.span())
        if not _QUOTABLE.match(text):
            raise Unwritten(f"the label {text!r}")
        return S.Label(text, self.span(), (text,) if text else ())

    def arg(self, text: str) -> S.Arg:
        m = _KWARG.match(text)
        if m is not None:
            return S.Arg(m.group(1), self.expr(m.group(2)), self.span())
        value = self.expr(text)
        return S.Arg(None, value, value.span)

    def expr(self, text: str) -> S.Expr:
        if text not in self.exprs:
            try:
                self.exprs[text] = parse_expr(text, self.source.path)
            except SpecSyntaxError:
                raise Unwritten(f"the argument {text!r}") from None
        return self.exprs[text]
