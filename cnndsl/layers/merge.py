"""Merges made by structure (not written as layers): concat of branches, residual add."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape
from cnndsl.layers.base import Layer


@dataclass(frozen=True)
class ConcatChannels(Layer):
    """The join of a `concat { ... }`: stacks branch outputs along channels."""

    kind = "concat"
    category = "merge"
    onnx_ops = "Concat"

    def infer(self, shapes):
        first = shapes[0]
        for i, s in enumerate(shapes[1:], 2):
            if len(s) != len(first) or s[1:] != first[1:]:
                raise RuleError(
                    f"concat branches disagree: branch 1 gives {fmt_shape(first)}, branch {i} gives {fmt_shape(s)}",
                    "branches are joined along channels, so their other sizes must match: check their "
                    "strides and padding", field=f"#{i - 1}")
        return (sum(s[0] for s in shapes),) + tuple(first[1:])

    def emit(self, b, node, xs):
        return b.node("Concat", xs, node.name, axis=1)


@dataclass(frozen=True)
class AddResidual(Layer):
    """The join of a `residual { ... }`: element-wise sum of the body and the shortcut."""

    kind = "add"
    category = "merge"
    onnx_ops = "Add"

    def infer(self, shapes):
        if shapes[0] != shapes[1]:
            raise RuleError(f"residual add: the body gives {fmt_shape(shapes[0])} but the shortcut gives "
                            f"{fmt_shape(shapes[1])}")
        return shapes[0]

    def emit(self, b, node, xs):
        return b.node("Add", xs, node.name)
