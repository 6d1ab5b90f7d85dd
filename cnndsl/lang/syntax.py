"""What was written: immutable records built by parse.py, with no semantics. Each has a span.

The records are NamedTuples rather than frozen dataclasses: a module of 27 of them is imported by
every command, and a frozen dataclass costs six times as much to create (1.3 ms against 0.2 ms on
Python 3.11), a fifth of `cnndsl params` on a small spec. Compare records by ``type`` as well as
value where it matters (a NamedTuple equals any tuple of the same items)."""

from __future__ import annotations

from typing import NamedTuple

from cnndsl.lang.source import SourceFile, Span

# -- expressions ---------------------------------------------------------------------------

class Num(NamedTuple):
    value: int | float
    span: Span


class Dims(NamedTuple):
    """``3x224x224``: a tuple of positive integers written with 'x'."""

    values: tuple[int, ...]
    span: Span


class Name(NamedTuple):
    """A bare word: a block parameter when one is in scope, else a symbol such as ``relu``."""

    id: str
    span: Span


class Str(NamedTuple):
    value: str
    span: Span


class TupleExpr(NamedTuple):
    items: tuple[Expr, ...]
    span: Span


class ListExpr(NamedTuple):
    items: tuple[Expr, ...]
    span: Span


class BinOp(NamedTuple):
    op: str  # + - * / // %
    left: Expr
    right: Expr
    span: Span


class Neg(NamedTuple):
    operand: Expr
    span: Span


class Compare(NamedTuple):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr
    span: Span


class Logic(NamedTuple):
    """``a and b``, ``a or b`` (Python's: the right side is evaluated only when it decides)."""

    op: str  # and, or
    left: Expr
    right: Expr
    span: Span


class Not(NamedTuple):
    operand: Expr
    span: Span


class Choose(NamedTuple):
    """``A if COND else B``."""

    cond: Expr
    then: Expr
    otherwise: Expr
    span: Span


class Call(NamedTuple):
    """``max(a, b)``: a built-in function (cnndsl/lang/values.py lists them)."""

    func: str
    args: tuple[Expr, ...]
    span: Span
    func_span: Span


Expr = Num | Dims | Name | Str | TupleExpr | ListExpr | BinOp | Neg | Compare | Logic | Not | Choose | Call


class Arg(NamedTuple):
    """One argument: positional (``name`` is None) or ``name=value``."""

    name: str | None
    value: Expr
    span: Span


# -- statements ----------------------------------------------------------------------------

class Label(NamedTuple):
    """``name:``, ``block:`` or ``"denselayer{i+1}":``. ``parts`` is the quoted text split into
    literal strings and the expressions of its ``{...}`` holes (None for a plain name)."""

    name: str
    span: Span
    parts: tuple[str | Expr, ...] | None = None


class Layer(NamedTuple):
    """``[label:] KIND args...``: a layer, or a call of a block (decided by check.py)."""

    label: Label | None
    kind: str
    kind_span: Span
    args: tuple[Arg, ...]
    span: Span


class Group(NamedTuple):
    """``[label:] { ... }``: a named sequence; one module with its own names."""

    label: Label | None
    body: tuple[Stmt, ...]
    span: Span


class Repeat(NamedTuple):
    """``[label:] repeat N [as VAR] stmt`` or ``repeat N [as VAR] { ... }``."""

    label: Label | None
    count: Expr
    body: tuple[Stmt, ...]
    span: Span
    var: str | None = None  # counts 0 .. N-1 in the copies


class Concat(NamedTuple):
    """``[label:] concat|add|mul [split] [crop] { branch; branch; ... }``: each statement is a
    branch, and ``op`` joins their outputs (stacked along channels, summed or multiplied). With
    ``split`` each branch gets an equal share of the input's channels instead of all of them; with
    ``crop`` each is center-cropped to the smallest height and width among them."""

    label: Label | None
    branches: tuple[Stmt, ...]
    span: Span
    split: bool = False
    op: str = "concat"
    crop: bool = False


class Residual(NamedTuple):
    """``residual { ... } [shortcut [name] { ... }]``: add the input to the body's output."""

    label: Label | None
    body: tuple[Stmt, ...]
    shortcut_name: str
    shortcut: tuple[Stmt, ...] | None
    span: Span
    when: Expr | None = None  # `residual if COND { ... }`: without the add when COND is false


class Gate(NamedTuple):
    """``[label:] gate { ... }``: the input times the body's output, broadcast over height and
    width (squeeze-and-excitation). Always a scope of its own, as its module is in PyTorch."""

    label: Label | None
    body: tuple[Stmt, ...]
    span: Span


class From(NamedTuple):
    """``from down3`` (or ``from layer1.0``, ``from input``): the statements after it go on from the
    tensor an earlier statement so labelled made. ``path`` holds the dotted parts, as labels."""

    path: tuple[Label, ...]
    span: Span


class Output(NamedTuple):
    """``label: output [train] { ... }``: one more output of the network, named by its label, made
    by the body from the current tensor; the statements after it go on from that same tensor.
    ``train``: used only in training (``compile --inference`` leaves it out)."""

    label: Label | None
    body: tuple[Stmt, ...]
    span: Span
    train: bool = False


class If(NamedTuple):
    """``if COND { ... } [else { ... }]``: the statements of the branch taken stand in its place."""

    cond: Expr
    then: tuple[Stmt, ...]
    otherwise: tuple[Stmt, ...]
    span: Span


Stmt = Layer | Group | Repeat | Concat | Residual | Gate | If | From | Output


class Param(NamedTuple):
    """``name`` or ``name=default`` in a block's or the network's parameter list."""

    name: str
    default: Expr | None
    span: Span


class BlockDef(NamedTuple):
    """``block NAME(params) { ... }``: expanded at each call by check.py."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


class Variant(NamedTuple):
    """``variant NAME key=value ...``: a named setting of the network's parameters."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


class InputDecl(NamedTuple):
    args: tuple[Arg, ...]
    span: Span


class Spec(NamedTuple):
    """A whole file: header, blocks and the top-level statements in order."""

    source: SourceFile
    name: str | None
    title: str | None
    name_span: Span | None
    meta: tuple[Arg, ...]  # `network NAME "title" year=2012 top5=15.3`
    inputs: tuple[InputDecl, ...]
    blocks: tuple[BlockDef, ...]
    body: tuple[Stmt, ...]
    headers: int  # how many `network` lines were written
    params: tuple[Param, ...] = ()  # `network NAME(width=1.0, depth=1.0)`: visible everywhere
    variants: tuple[Variant, ...] = ()
