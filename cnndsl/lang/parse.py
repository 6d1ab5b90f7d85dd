"""Stage 1, parse: text -> syntax.Spec. The lark tree never leaves this module."""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache

from cnndsl.errors import SpecSyntaxError
from cnndsl.lang import limits
from cnndsl.lang import syntax as S
from cnndsl.lang.parsertables import grammar_text, make_parser  # noqa: F401 (grammar_text: public)
from cnndsl.lang.source import SourceFile, Span, normalise, span_of

_READABLE = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "DIMS": "a size such as 3x3",
    "STRING": "a quoted string", "_NL": "end of line", "$END": "end of file", "NEG": "'-'",
    "CALLNAME": "a function such as max(", "COMPARE": "a comparison (== != < <= > >=)",
}


class _TooMuch(Exception):
    """Raised by the post-lexer at the token where a limit is crossed."""

    def __init__(self, token, message: str, hint: str) -> None:
        super().__init__(message)
        self.token, self.message, self.hint = token, message, hint


MAX_DIGITS = 18  # integer literals stay below 10^18 (arithmetic results are capped near 2^62)
_OPERATORS = frozenset({"+", "-", "*", "/", "//", "%"})
_KEYWORDS = frozenset({"concat", "add", "mul", "split", "crop", "residual", "gate", "shortcut", "else", "output",
                       "train", "from"})
_CONDITION_TOKENS = frozenset({"_IF", "_ELSE", "AND", "OR", "COMPARE"})
# C0 and C1 controls (\r, escape sequences), DEL, and the bidirectional overrides ("Trojan Source")
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _PostLex:
    """Post-lexer: a line break inside ( ) or [ ] does not end a statement; nesting and
    arithmetic are bounded (so nothing downstream can recurse without limit). In a thread that
    is in ``read_tokens`` (fmt), every token the lexer gives, and every comment, is also kept."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.local = threading.local()

    def comment(self, tok):  # the lexer's callback for COMMENT, which the grammar ignores
        kept = getattr(self.local, "kept", None)
        if kept is not None:
            kept.append(tok)
        return tok

    def process(self, stream):
        kept = getattr(self.local, "kept", None)
        if kept is not None:
            stream = _keeping(stream, kept)
        inline = nesting = operators = 0
        for tok in stream:
            kind = tok.type
            if kind in ("LPAR", "LSQB", "LBRACE"):
                nesting += 1
                inline += kind != "LBRACE"
                if nesting > limits.MAX_NESTING:
                    raise _TooMuch(tok, f"brackets nest more than {limits.MAX_NESTING} deep",
                                   "flatten the structure, or set CNNDSL_MAX_NESTING")
            elif kind in ("RPAR", "RSQB", "RBRACE"):
                nesting = max(0, nesting - 1)
                inline = max(0, inline - (kind != "RBRACE"))
            elif kind == "_NL" and inline:
                continue
            elif kind == "STRING" and _UNSHOWABLE.search(tok):
                char = _UNSHOWABLE.search(tok).group()
                raise _TooMuch(tok, f"the string holds the control character U+{ord(char):04X}",
                               "strings are printed to terminals, where control characters can forge or "
                               "hide output: remove it")
            elif kind in ("_NL", "SEMICOLON"):
                operators = 0
            elif str(tok) in _OPERATORS:
                operators += 1
                if operators > limits.MAX_OPERATORS:
                    raise _TooMuch(tok, f"more than {limits.MAX_OPERATORS} arithmetic operators in one statement",
                                   "use a block parameter, or set CNNDSL_MAX_OPERATORS")
            yield tok


def _keeping(stream, kept: list):
    for tok in stream:
        kept.append(tok)
        yield tok


_POSTLEX = _PostLex()


@lru_cache(maxsize=1)
def _parser():
    return make_parser(propagate_positions=True, postlex=_POSTLEX, lexer_callbacks={"COMMENT": _POSTLEX.comment})


def read_tokens(text: str) -> list:
    """lark's tokens of a spec that parses, as the lexer gives them (line breaks inside brackets
    too) and with its comments, in the order read (fmt lays them out); lark's error otherwise."""
    _POSTLEX.local.kept = kept = []
    try:
        _parser().parse(text, start="start")
    finally:
        _POSTLEX.local.kept = None
    return kept


def terminal_regexp(name: str) -> str:
    """The regular expression of one of the grammar's terminals (fmt's NEG)."""
    return _parser().get_terminal(name).pattern.to_regexp()


def parse(text: str, path: str = "<string>") -> S.Spec:
    """Parse a spec's text into a syntax.Spec, or raise SpecSyntaxError at the offending token."""
    text = normalise(text)
    source = SourceFile(path, text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_SPEC_BYTES:
        raise SpecSyntaxError(f"the spec is {size:,} bytes; the limit is {limits.MAX_SPEC_BYTES:,}",
                              path=path, hint="is this really a spec? set CNNDSL_MAX_SPEC_BYTES to raise the limit")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecSyntaxError("the file contains a NUL byte; is it a binary file?",
                              Span(source, line, 1, line, 2), "a spec is plain UTF-8 text")
    return _Build(source).transform(_tree(source, "start"))


def parse_expr(text: str, path: str = "<string>") -> S.Expr:
    """One expression, as an argument's value is written (``3x3``, ``c*4``, ``(1, 0, 1, 0)``), or
    SpecSyntaxError."""
    source = SourceFile(path, text)
    return _Build(source).expr(_tree(source, "expr"))


def _tree(source: SourceFile, start: str):
    """lark's tree of the source's text (a whole spec, or one expression), or SpecSyntaxError."""
    from lark.exceptions import UnexpectedInput

    try:
        return _parser().parse(source.text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    except _TooMuch as exc:
        raise SpecSyntaxError(exc.message, span_of(source, exc.token), exc.hint) from None


def _describe_terminal(name: str) -> str:
    if name in _READABLE:
        return _READABLE[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def _syntax_error(exc, source: SourceFile) -> SpecSyntaxError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line = max(1, getattr(exc, "line", 1) or 1)
    col = max(1, getattr(exc, "column", 1) or 1)
    expected = sorted({_describe_terminal(t) for t in (getattr(exc, "expected", None) or ())
                       if not t.startswith("__")})
    hint = None
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        message = f"unexpected character {char!r}"
        allowed = sorted({_describe_terminal(t) for t in (exc.allowed or ())})
        if allowed:
            hint = "expected " + _one_of(allowed)
        span = Span(source, line, col, line, col + 1)
        return SpecSyntaxError(message, span, hint)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        if _previous_word(source, line, col) in _KEYWORDS:  # `concat` is a statement here, not a label
            expected = [e for e in expected if e != "':'"]
        shown = "end of line" if tok.type == "_NL" else repr(str(tok))
        message = f"unexpected {shown}"
        if expected:
            message += f"; expected {_one_of(expected)}"
        if tok.type == "_NL" and "'{'" in expected:
            hint = "a '{' must be on the same line as the statement it opens"
        elif tok.type == "_NL":
            hint = "the statement is incomplete; did you forget an argument or a closing bracket?"
        elif str(tok) == "{" and _previous_word(source, line, col) == "shortcut":
            hint = "write `} shortcut {` on the line that closes the residual's body"
        elif str(tok) == "{":
            hint = "a '{' must be on the same line as the statement it opens"
        elif tok.type in _CONDITION_TOKENS:
            hint = "a condition or a choice inside an argument goes in parentheses: `stride=(2 if i == 0 else 1)`"
        elif str(tok) == "shortcut":
            hint = "`shortcut` must follow the residual's closing '}' on the same line: `} shortcut {`"
        end = col + max(1, len(str(tok).splitlines()[0]) if str(tok).strip() else 1)
        return SpecSyntaxError(message, Span(source, line, col, line, end), hint)
    # end of file
    last = max(1, len(source.lines))
    lastcol = len(source.line(last)) + 1
    message = "unexpected end of file"
    if expected:
        message += f"; expected {_one_of(expected)}"
    if isinstance(exc, (UnexpectedEOF, UnexpectedToken)) and "'}'" in expected:
        hint = "a '{' was never closed"
    return SpecSyntaxError(message, Span(source, last, lastcol, last, lastcol + 1), hint)


def _previous_word(source: SourceFile, line: int, col: int) -> str:
    words = source.line(line)[: col - 1].split()
    return words[-1] if words else ""


def _one_of(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return "one of " + ", ".join(items)


class _Build:
    """lark tree -> syntax dataclasses. Builds only; validates nothing. ``at`` shifts positions
    (line, column) for the expression of a label's hole, parsed apart from its line."""

    def __init__(self, source: SourceFile, at: tuple[int, int] = (0, 0)) -> None:
        self.source = source
        self.at = at

    def span(self, node) -> Span:
        span = span_of(self.source, getattr(node, "meta", node))
        if self.at == (0, 0):
            return span
        line, col = self.at
        return Span(self.source, span.line + line, span.col + col, span.end_line + line, span.end_col + col)

    def transform(self, tree) -> S.Spec:
        name = title = name_span = None
        headers = 0
        meta: tuple[S.Arg, ...] = ()
        params: tuple[S.Param, ...] = ()
        inputs, blocks, variants, body = [], [], [], []
        for child in tree.children:
            kind = child.data
            if kind == "network":
                headers += 1
                tok, netparams, text, *args = child.children
                name, name_span = str(tok), self.span(tok)
                params = self.params(netparams.children) if netparams is not None else ()
                title = str(text)[1:-1] if text is not None else None
                meta = tuple(self.arg(a) for a in args)
            elif kind == "variant":
                tok, *args = child.children
                variants.append(S.Variant(str(tok), tuple(self.arg(a) for a in args), self.span(child),
                                          self.span(tok)))
            elif kind == "input":
                inputs.append(S.InputDecl(tuple(self.arg(a) for a in child.children), self.span(child)))
            elif kind == "block":
                blocks.append(self.block(child))
            else:
                body.append(self.stmt(child))
        return S.Spec(self.source, name, title, name_span, meta, tuple(inputs), tuple(blocks), tuple(body), headers,
                      params, tuple(variants))

    def params(self, trees) -> tuple[S.Param, ...]:
        out = []
        for p in trees:
            if p is None:
                continue
            ptok, default = p.children
            out.append(S.Param(str(ptok), self.expr(default) if default is not None else None, self.span(ptok)))
        return tuple(out)

    def block(self, tree) -> S.BlockDef:
        name_tok, *rest = tree.children
        return S.BlockDef(str(name_tok), self.params(rest[:-1]), self.body(rest[-1]), self.span(tree),
                          self.span(name_tok))

    def body(self, tree) -> tuple[S.Stmt, ...]:
        return tuple(self.stmt(c) for c in tree.children)

    def label(self, tree) -> S.Label | None:
        if tree is None:
            return None
        return self.label_word(tree.children[0])

    def label_word(self, tok) -> S.Label:
        span = self.span(tok)
        if tok.type != "STRING":
            return S.Label(str(tok), span)
        return S.Label(str(tok)[1:-1], span, self.holes(str(tok)[1:-1], span))

    def holes(self, text: str, span: Span) -> tuple[str | S.Expr, ...]:
        """A quoted label split into literal text and the expressions of its `{...}` holes."""
        from lark.exceptions import UnexpectedInput

        parts: list[str | S.Expr] = []
        pos = 0
        for m in _HOLE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            inner = m.group(1)
            at = (span.line - 1, span.col + m.start(1))  # the quote, then the text before the hole
            if not inner.strip():
                raise SpecSyntaxError("an empty `{}` in a label", Span(self.source, span.line, span.col + m.start() + 1,
                                      span.line, span.col + m.end() + 1), "write an expression inside: `{i+1}`")
            try:
                tree = _parser().parse(inner, start="expr")
            except UnexpectedInput as exc:
                col = at[1] + max(1, getattr(exc, "column", 1) or 1)
                raise SpecSyntaxError("this `{...}` in the label is not an expression",
                                      Span(self.source, span.line, col, span.line, col + 1),
                                      "a hole holds an expression such as `{i+1}`") from None
            parts.append(_Build(self.source, at).expr(tree))
            pos = m.end()
        rest = text[pos:]
        if "{" in rest or "}" in rest:
            col = span.col + 1 + pos + max(rest.find("{"), rest.find("}"))
            raise SpecSyntaxError("an unmatched brace in a label",
                                  Span(self.source, span.line, col, span.line, col + 1),
                                  "holes are written `{expression}`")
        if rest:
            parts.append(rest)
        return tuple(parts)

    def stmt(self, tree) -> S.Stmt:
        kind = tree.data
        c = tree.children
        span = self.span(tree)
        if kind == "layer":
            label, kind_tok, *args = c
            return S.Layer(self.label(label), str(kind_tok), self.span(kind_tok),
                           tuple(self.arg(a) for a in args), span)
        if kind == "group":
            return S.Group(self.label(c[0]), self.body(c[1]), span)
        if kind == "repeat":
            label, count, var, body = c
            stmts = self.body(body) if body.data == "body" else (self.stmt(body),)
            return S.Repeat(self.label(label), self.expr(count), stmts, span, str(var) if var is not None else None)
        if kind == "concat":
            label, op, split, crop, body = c
            return S.Concat(self.label(label), self.body(body), span, split is not None, str(op), crop is not None)
        if kind == "from_stmt":
            return S.From(tuple(self.label_word(tok) for tok in c[0].children), span)
        if kind == "output":
            label, train, body = c
            return S.Output(self.label(label), self.body(body), span, train is not None)
        if kind == "residual":
            label, when, body, shortcut = c
            sc_name, sc_body = "shortcut", None
            if shortcut is not None:
                sc_tok, sc_tree = shortcut.children
                sc_name = str(sc_tok) if sc_tok is not None else "shortcut"
                sc_body = self.body(sc_tree)
            return S.Residual(self.label(label), self.body(body), sc_name, sc_body, span,
                              self.expr(when) if when is not None else None)
        if kind == "gate":
            return S.Gate(self.label(c[0]), self.body(c[1]), span)
        if kind == "if_stmt":
            cond, then, otherwise = c
            if otherwise is None:
                rest = ()
            elif otherwise.data == "body":
                rest = self.body(otherwise)
            else:
                rest = (self.stmt(otherwise),)
            return S.If(self.expr(cond), self.body(then), rest, span)
        raise AssertionError(f"unhandled statement {kind}")  # pragma: no cover

    def arg(self, tree) -> S.Arg:
        if getattr(tree, "data", None) == "kwarg":
            tok, value = tree.children
            return S.Arg(str(tok), self.expr(value), self.span(tree))
        expr = self.expr(tree)
        return S.Arg(None, expr, expr.span)

    def expr(self, tree) -> S.Expr:
        from lark import Token

        if isinstance(tree, Token):  # a bare terminal kept by an inlined rule
            return self.expr_token(tree)
        kind = tree.data
        span = self.span(tree)
        c = tree.children
        if kind in ("int", "float", "dims", "name", "string"):
            return self.expr_token(c[0])
        if kind in _BINOPS:
            return S.BinOp(_BINOPS[kind], self.expr(c[0]), self.expr(c[1]), span)
        if kind == "neg":
            return S.Neg(self.expr(c[-1]), span)  # c[0] is the NEG sign when written as one
        if kind == "tuple":
            return S.TupleExpr(tuple(self.expr(x) for x in c if x is not None), span)
        if kind == "list":
            return S.ListExpr(tuple(self.expr(x) for x in c if x is not None), span)
        if kind == "compare":
            return S.Compare(str(c[1]), self.expr(c[0]), self.expr(c[2]), span)
        if kind in ("and_", "or_"):
            return S.Logic(kind[:-1], self.expr(c[0]), self.expr(c[1]), span)
        if kind == "not_":
            return S.Not(self.expr(c[0]), span)
        if kind == "choose":
            return S.Choose(self.expr(c[1]), self.expr(c[0]), self.expr(c[2]), span)
        if kind == "call":
            return S.Call(str(c[0]), tuple(self.expr(x) for x in c[1:] if x is not None), span, self.span(c[0]))
        raise AssertionError(f"unhandled expression {kind}")  # pragma: no cover

    def expr_token(self, tok) -> S.Expr:
        span = self.span(tok)
        text = str(tok)
        if tok.type in ("INT", "DIMS") and any(len(part) > MAX_DIGITS for part in text.split("x")):
            raise SpecSyntaxError(f"the number {text[:20]}... is too large (more than {MAX_DIGITS} digits)", span,
                                  "sizes and counts are integers below 10^18")
        if tok.type == "INT":
            return S.Num(int(text), span)
        if tok.type == "FLOAT":
            value = float(text)
            if not math.isfinite(value):
                raise SpecSyntaxError(f"the number {text[:20]} is too large for a float", span)
            return S.Num(value, span)
        if tok.type == "DIMS":
            return S.Dims(tuple(int(p) for p in text.split("x")), span)
        if tok.type == "STRING":
            return S.Str(text[1:-1], span)
        return S.Name(text, span)


_HOLE = re.compile(r"\{([^{}]*)\}")
_BINOPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}
