"""What was written: frozen dataclasses built by parse.py, with no semantics. Each has a span."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.lang.source import SourceFile, Span

# -- expressions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Dims:
    """``3x224x224``: a tuple of positive integers written with 'x'."""

    values: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Name:
    """A bare word: a block parameter when one is in scope, else a symbol such as ``relu``."""

    id: str
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class TupleExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // %
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # == != < <= > >=
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Logic:
    """``a and b``, ``a or b`` (Python's: the right side is evaluated only when it decides)."""

    op: str  # and, or
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Choose:
    """``A if COND else B``."""

    cond: Expr
    then: Expr
    otherwise: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """``max(a, b)``: a built-in function (cnndsl/lang/values.py lists them)."""

    func: str
    args: tuple[Expr, ...]
    span: Span
    func_span: Span


Expr = Num | Dims | Name | Str | TupleExpr | ListExpr | BinOp | Neg | Compare | Logic | Not | Choose | Call


@dataclass(frozen=True)
class Arg:
    """One argument: positional (``name`` is None) or ``name=value``."""

    name: str | None
    value: Expr
    span: Span


# -- statements ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    """``name:``, ``block:`` or ``"denselayer{i+1}":``. ``parts`` is the quoted text split into
    literal strings and the expressions of its ``{...}`` holes (None for a plain name)."""

    name: str
    span: Span
    parts: tuple[str | Expr, ...] | None = None


@dataclass(frozen=True)
class Layer:
    """``[label:] KIND args...``: a layer, or a call of a block (decided by check.py)."""

    label: Label | None
    kind: str
    kind_span: Span
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Group:
    """``[label:] { ... }``: a named sequence; one module with its own names."""

    label: Label | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Repeat:
    """``[label:] repeat N [as VAR] stmt`` or ``repeat N [as VAR] { ... }``."""

    label: Label | None
    count: Expr
    body: tuple[Stmt, ...]
    span: Span
    var: str | None = None  # counts 0 .. N-1 in the copies


@dataclass(frozen=True)
class Concat:
    """``[label:] concat [split] { branch; branch; ... }``: each statement is a branch; with
    ``split`` each branch gets an equal share of the input's channels instead of all of them."""

    label: Label | None
    branches: tuple[Stmt, ...]
    span: Span
    split: bool = False


@dataclass(frozen=True)
class Residual:
    """``residual { ... } [shortcut [name] { ... }]``: add the input to the body's output."""

    label: Label | None
    body: tuple[Stmt, ...]
    shortcut_name: str
    shortcut: tuple[Stmt, ...] | None
    span: Span
    when: Expr | None = None  # `residual if COND { ... }`: without the add when COND is false


@dataclass(frozen=True)
class Gate:
    """``[label:] gate { ... }``: the input times the body's output, broadcast over height and
    width (squeeze-and-excitation). Always a scope of its own, as its module is in PyTorch."""

    label: Label | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class If:
    """``if COND { ... } [else { ... }]``: the statements of the branch taken stand in its place."""

    cond: Expr
    then: tuple[Stmt, ...]
    otherwise: tuple[Stmt, ...]
    span: Span


Stmt = Layer | Group | Repeat | Concat | Residual | Gate | If


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Variant:
    """``variant NAME key=value ...``: a named setting of the network's parameters."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class InputDecl:
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Spec:
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
