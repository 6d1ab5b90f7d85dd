"""Evaluating argument expressions: arithmetic, comparisons, built-in functions, sizes, words,
lists, parameters (of the network and of blocks) and the shape of the statement's input."""

from __future__ import annotations

import math

from cnndsl.errors import RuleError, SpecSyntaxError, did_you_mean
from cnndsl.lang import syntax as S
from cnndsl.lang.show import Quoted

_WORDS = {"true": True, "false": False, "none": None}
MAX_INT = 2 ** 62


class Env:
    """Names in scope: block parameters and repeat counters over the network's parameters
    (``values``), and the shape of the input of the statement being evaluated (``shape``), which
    ``in_channels``, ``in_height`` and ``in_width`` read. (A plain class: one is made for every
    statement checked.)"""

    __slots__ = ("values", "shape")

    def __init__(self, values: dict, shape: tuple[int, ...] | None = None) -> None:
        self.values = values
        self.shape = shape

    def at(self, shape: tuple[int, ...]) -> Env:
        return self if shape is self.shape else Env(self.values, shape)

    def with_values(self, more: dict) -> Env:
        return Env({**self.values, **more}, self.shape)


# The input of the statement, by name (a parameter of the same name hides it).
INPUT_NAMES = {"in_channels": 0, "in_height": 1, "in_width": 2}


def _input_size(name: str, expr, env: Env) -> int:
    shape = env.shape
    if shape is None:
        raise ExprError(f"'{name}' is not known here", expr.span,
                        "it is the input's size at a statement inside the network, not on the header lines")
    axis = INPUT_NAMES[name]
    if axis >= len(shape):
        raise ExprError(f"'{name}': the input here is a flat vector of {shape[0]:,} features", expr.span,
                        "use in_channels for its length")
    return shape[axis]


def make_divisible(value, divisor, min_value=None):
    """torchvision's _make_divisible (MobileNet, EfficientNet, MnasNet's rounding of widths): the
    nearest multiple of ``divisor`` (at least ``min_value``), one step up if that loses over 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _round(value, digits=None):
    return round(value) if digits is None else round(value, digits)


# name -> (function, fewest arguments, most arguments, what it does: for hints and the README)
FUNCTIONS = {
    "min": (min, 1, None, "the smallest argument"),
    "max": (max, 1, None, "the largest argument"),
    "ceil": (math.ceil, 1, 1, "round up to an integer"),
    "floor": (math.floor, 1, 1, "round down to an integer"),
    "round": (_round, 1, 2, "round to the nearest integer (ties to even, as Python's round)"),
    "int": (int, 1, 1, "drop the fraction (toward zero)"),
    "abs": (abs, 1, 1, "the absolute value"),
    "make_divisible": (make_divisible, 2, 3, "torchvision's width rounding: make_divisible(v, 8)"),
}


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
    elif isinstance(expr, (S.Neg, S.Not)):
        yield from names(expr.operand)
    elif isinstance(expr, (S.Compare, S.Logic)):
        yield from names(expr.left)
        yield from names(expr.right)
    elif isinstance(expr, S.Choose):
        yield from names(expr.cond)
        yield from names(expr.then)
        yield from names(expr.otherwise)
    elif isinstance(expr, S.Call):
        for item in expr.args:
            yield from names(item)


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
        if expr.id in INPUT_NAMES:
            return _input_size(expr.id, expr, env)
        return _WORDS.get(expr.id, expr.id)
    if isinstance(expr, S.TupleExpr):
        return tuple(evaluate(e, env) for e in expr.items)
    if isinstance(expr, S.ListExpr):
        return [evaluate(e, env) for e in expr.items]
    if isinstance(expr, S.Neg):
        return -_number(expr.operand, env)
    if isinstance(expr, S.BinOp):
        return _binop(expr, env)
    if isinstance(expr, S.Compare):
        return _compare(expr, env)
    if isinstance(expr, S.Logic):
        left = truth(expr.left, env)
        if left == (expr.op == "or"):
            return left
        return truth(expr.right, env)
    if isinstance(expr, S.Not):
        return not truth(expr.operand, env)
    if isinstance(expr, S.Choose):
        return evaluate(expr.then if truth(expr.cond, env) else expr.otherwise, env)
    return _call(expr, env)


def truth(expr: S.Expr, env: Env) -> bool:
    """A condition's value: true or false, a comparison, or a parameter holding one of those.
    Numbers and words are not conditions (write `n > 0`, `act == relu`)."""
    value = evaluate(expr, env)
    if not isinstance(value, bool):
        hint = "compare it: `x > 0`, `act == relu`"
        if isinstance(value, str) and isinstance(expr, S.Name) and value == expr.id:
            hint = did_you_mean(value, env.values) or f"'{value}' is not a parameter in scope; {hint}"
        raise ExprError(f"a condition must be true or false, not {_shown(value)}", expr.span, hint)
    return value


def _shown(value) -> str:
    from cnndsl.lang.show import show

    return show(value)


def _compare(expr: S.Compare, env: Env) -> bool:
    a, b = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op in ("==", "!="):
        same = type(a) is type(b) or _is_number(a) and _is_number(b)
        return (same and a == b) == (expr.op == "==")
    if not (_is_number(a) and _is_number(b)):
        bad = expr.left if not _is_number(a) else expr.right
        raise ExprError(f"'{expr.op}' compares numbers, not {_shown(evaluate(bad, env))}", bad.span)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[expr.op]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _call(expr: S.Call, env: Env):
    entry = FUNCTIONS.get(expr.func)
    if entry is None:
        raise ExprError(f"unknown function '{expr.func}'", expr.func_span,
                        did_you_mean(expr.func, FUNCTIONS) or f"the functions are {', '.join(FUNCTIONS)}")
    func, fewest, most, _ = entry
    if not fewest <= len(expr.args) <= (most if most is not None else len(expr.args)):
        many = f"{fewest}" if fewest == most else f"{fewest} or more" if most is None else f"{fewest} to {most}"
        raise ExprError(f"{expr.func}() takes {many} argument{'s' if many != '1' else ''}, got {len(expr.args)}",
                        expr.span)
    values = [_number(a, env) for a in expr.args]
    try:
        result = func(*values)
    except (OverflowError, ValueError):
        raise ExprError("the value is too large", expr.span) from None
    if isinstance(result, int) and abs(result) > MAX_INT:
        raise ExprError(f"the value {result} is too large", expr.span)
    return result


def _number(expr: S.Expr, env: Env):
    value = evaluate(expr, env)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and isinstance(expr, S.Name):
            hint = did_you_mean(value, env.values) or (
                f"names in arithmetic are parameters, repeat counters and in_channels, in_height, in_width; "
                f"in scope: {', '.join(env.values) or 'none'}")
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


def parse_value(text: str, what: str):
    """The value of one expression written outside a spec (the CLI's --set), with no names in scope."""
    from cnndsl.lang.parse import parse_expr

    try:
        expr = parse_expr(text, what)
    except SpecSyntaxError:
        raise RuleError(f"{what}: {text!r} is not a value",
                        "write a number, a word or an expression: 1.2, relu, 3x3") from None
    return evaluate(expr, Env({}))
