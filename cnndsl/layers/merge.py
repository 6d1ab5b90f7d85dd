"""Made by structure (not written as layers): the joins of branches (concat, add, mul) and the
split of `concat split`, the residual add, the gate."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape
from cnndsl.layers.base import Layer


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


class _ElementwiseJoin(Layer):
    """The join of an `add { ... }` or a `mul { ... }`: branch outputs combined element by element.
    A branch may give one value per channel (Cx1x1), broadcast over height and width (a scale
    computed by a global pool, as LR-ASPP's); otherwise the shapes must be equal."""

    category = "merge"
    op = "?"

    def infer(self, shapes):
        def per_channel(s):
            return len(s) == 3 and s[1:] == (1, 1)

        first = next((k for k, s in enumerate(shapes) if not per_channel(s)), 0)
        full = shapes[first]
        for i, s in enumerate(shapes):
            if s != full and not (per_channel(s) and s[0] == full[0]):
                raise RuleError(f"{self.kind}: branch {first + 1} gives {fmt_shape(full)}, branch {i + 1} gives "
                                f"{fmt_shape(s)}", f"{self.kind} needs equal shapes, or one value per channel "
                                f"({fmt_shape((full[0], 1, 1))}) to scale each channel", field=f"#{i}")
        return full

    def emit(self, b, node, xs):
        if len(xs) == 1:
            return b.node("Identity", xs, node.name)
        if self.op == "Add" and len(xs) > 2:
            return b.node("Sum", xs, node.name)
        out = xs[0]
        for k, x in enumerate(xs[1:], 1):
            out = b.node(self.op, [out, x], node.name if k == len(xs) - 1 else f"{node.name}.{k}")
        return out


class AddBranches(_ElementwiseJoin):
    """The join of an `add { ... }`: the sum of its branches (FPN's lateral adds)."""

    kind = "add"
    op = "Add"
    onnx_ops = "Add, Sum"


class MulBranches(_ElementwiseJoin):
    """The join of a `mul { ... }`: the product of its branches (LR-ASPP's attention)."""

    kind = "mul"
    op = "Mul"
    onnx_ops = "Mul"


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


class MulGate(Layer):
    """The join of a `gate { ... }`: the input times the body's output, broadcast over height and width."""

    kind = "mul"
    category = "merge"
    onnx_ops = "Mul"

    def infer(self, shapes):
        x, g = shapes
        if g[:1] != x[:1] or len(g) != len(x) or any(gd not in (1, xd) for gd, xd in zip(g[1:], x[1:], strict=True)):
            per_channel = fmt_shape((x[0],) + (1,) * (len(x) - 1))
            raise RuleError(f"gate: the body gives {fmt_shape(g)} but its input is {fmt_shape(x)}",
                            f"a gate's body must give one value per channel ({per_channel}) or the input's own "
                            f"shape: end it with a conv or dense of {x[0]} channels after a global pool")
        return x

    def emit(self, b, node, xs):
        return b.node("Mul", xs, node.name)


@dataclass(frozen=True)
class SplitChannels(Layer):
    """One share of a `concat split { ... }`'s input: channels [i*C/n, (i+1)*C/n), as PyTorch's chunk."""

    parts: int = 2
    index: int = 0

    kind = "split"
    category = "reshape"
    onnx_ops = "Slice"

    def infer(self, shapes):
        c = shapes[0][0]
        if c % self.parts:
            raise RuleError(f"concat split: {c} channels do not split into {self.parts} equal parts",
                            f"give the input a multiple of {self.parts} channels, or write one branch fewer")
        return (c // self.parts,) + tuple(shapes[0][1:])

    def emit(self, b, node, xs):
        share = node.in_shapes[0][0] // self.parts
        starts = b.ints(node.name + ".starts", [share * self.index])
        ends = b.ints(node.name + ".ends", [share * (self.index + 1)])
        axes = b.ints(node.name + ".axes", [1])
        return b.node("Slice", [xs[0], starts, ends, axes], node.name)
