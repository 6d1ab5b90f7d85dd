"""Evaluating argument expressions: integer arithmetic, sizes, words, lists, block parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.errors import RuleError, did_you_mean
from cnndsl.lang import syntax as S
from cnndsl.lang.show import Quoted

_WORDS = {"true": True, "false": False, "none": None}
MAX_INT = 2 ** 62


@dataclass(frozen=True)
class Env:
    """Block parameters in scope: name -> value."""

    values: dict


class ExprError(RuleError):
    def __init__(self, message: str, span, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.span = span


def names(expr: S.Expr):
    """Every bare word (S.Name) in an expression, in written order."""
    if isinstance(expr, S.Name):
        yield expr
    elif isinstance(expr, (S.TupleExpr, S.ListExpr)):
        for item in expr.items:
            yield from names(item)
    elif isinstance(expr, S.BinOp):
        yield from names(expr.left)
        yield from names(expr.right)
    elif isinstance(expr, S.Neg):
        yield from names(expr.operand)


def evaluate(expr: S.Expr, env: Env):
    """The value of an expression: int, float, str (a bare word), bool, None, tuple or list."""
    if isinstance(expr, S.Num):
        return expr.value
    if isinstance(expr, S.Dims):
        return expr.values
    if isinstance(expr, S.Str):
        return Quoted(expr.value)
    if isinstance(expr, S.Name):
        if expr.id in env.values:
            return env.values[expr.id]
        return _WORDS.get(expr.id, expr.id)
    if isinstance(expr, S.TupleExpr):
        return tuple(evaluate(e, env) for e in expr.items)
    if isinstance(expr, S.ListExpr):
        return [evaluate(e, env) for e in expr.items]
    if isinstance(expr, S.Neg):
        return -_number(expr.operand, env)
    return _binop(expr, env)


def _number(expr: S.Expr, env: Env):
    value = evaluate(expr, env)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and isinstance(expr, S.Name):
            hint = did_you_mean(value, env.values) or (
                f"names in arithmetic are block parameters; in scope: {', '.join(env.values) or 'none'}")
            raise ExprError(f"unknown name '{value}' in arithmetic", expr.span, hint)
        raise ExprError(f"arithmetic needs numbers, not {value!r}", expr.span)
    return value


def _binop(expr: S.BinOp, env: Env):
    a, b = _number(expr.left, env), _number(expr.right, env)
    if expr.op in ("/", "//", "%") and b == 0:
        raise ExprError("division by zero", expr.span)
    try:
        result = _apply(expr, a, b)
    except OverflowError:
        raise ExprError("the value is too large", expr.span) from None
    if isinstance(result, float) and not math.isfinite(result):
        raise ExprError("the value is too large", expr.span)
    if isinstance(result, int) and abs(result) > MAX_INT:
        raise ExprError(f"the value {result} is too large", expr.span)
    return result


def _apply(expr: S.BinOp, a, b):
    op = expr.op
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op == "//":
        result = a // b
    elif op == "%":
        result = a % b
    elif isinstance(a, int) and isinstance(b, int):
        if a % b:
            raise ExprError(f"{a}/{b} is not a whole number", expr.span, f"use {a}//{b} to round down")
        result = a // b
    else:
        result = a / b
    return result
