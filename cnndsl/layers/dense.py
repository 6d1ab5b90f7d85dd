"""Dense (fully connected), flatten and dropout."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape
from cnndsl.layers.base import Layer, arg, boolean, fused_activation, number, positive_int, register
from cnndsl.model.ir import TRAINABLE, Param


@register("dense")
@dataclass(frozen=True)
class Dense(Layer):
    """dense UNITS [ACT] [bias=false]: fully connected; needs a flat input (write `flatten` first)

    Owns .weight (UNITS x inputs, as in PyTorch) and .bias.
    """

    units: int = arg(positive_int, pos=True)
    act: str | None = fused_activation()
    bias: bool = arg(boolean, True)

    fused_act = True
    category = "dense"
    counts = "UNITS·inputs + UNITS"
    onnx_ops = "Gemm"

    def infer(self, shapes):
        if len(shapes[0]) != 1:
            raise RuleError(f"dense needs a flat input, got {fmt_shape(shapes[0])}",
                            f"add `flatten` before this line (it gives {math.prod(shapes[0]):,} inputs)")
        return (self.units,)

    def params(self, prefix, shapes, out):
        n = shapes[0][0]
        ps = [Param(prefix + ".weight", (self.units, n), TRAINABLE, "auto", n, self.units)]
        if self.bias:
            ps.append(Param(prefix + ".bias", (self.units,), TRAINABLE, "zeros"))
        return ps

    def macs(self, shapes, out):
        return shapes[0][0] * self.units

    def emit(self, b, node, xs):
        inputs = [xs[0]] + [b.param(p) for p in node.params]
        return b.node("Gemm", inputs, node.name, transB=1)


@register("flatten")
class Flatten(Layer):
    """flatten: CxHxW -> C*H*W features"""

    category = "reshape"
    onnx_ops = "Flatten"

    def infer(self, shapes):
        return (math.prod(shapes[0]),)

    def emit(self, b, node, xs):
        if len(node.in_shapes[0]) == 1:
            return xs[0]
        return b.node("Flatten", xs, node.name, axis=1)


def _rate(v, field):
    v = number(v, field)
    if not 0 <= v < 1:
        raise RuleError(f"dropout rate must be in [0, 1), not {v:g}", field=field)
    return v


@register("dropout")
@dataclass(frozen=True)
class Dropout(Layer):
    """dropout [RATE]: listed in summaries; left out of the inference graph (RATE 0.5 by default)"""

    category = "regularization"
    onnx_ops = "nothing (left out of the inference graph)"

    rate: float = arg(_rate, 0.5, pos=True)

    def infer(self, shapes):
        return shapes[0]

    def emit(self, b, node, xs):
        return xs[0]
