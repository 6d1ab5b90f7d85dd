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


Expr = Num | Dims | Name | Str | TupleExpr | ListExpr | BinOp | Neg


@dataclass(frozen=True)
class Arg:
    """One argument: positional (``name`` is None) or ``name=value``."""

    name: str | None
    value: Expr
    span: Span


# -- statements ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Label:
    name: str
    span: Span


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
    """``[label:] repeat N stmt`` or ``repeat N { ... }``."""

    label: Label | None
    count: Expr
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Concat:
    """``[label:] concat { branch; branch; ... }``: each statement is a branch."""

    label: Label | None
    branches: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class Residual:
    """``residual { ... } [shortcut [name] { ... }]``: add the input to the body's output."""

    label: Label | None
    body: tuple[Stmt, ...]
    shortcut_name: str
    shortcut: tuple[Stmt, ...] | None
    span: Span


Stmt = Layer | Group | Repeat | Concat | Residual


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
