"""Channel shuffle (ShuffleNet): a fixed permutation of the channels, no parameters."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.layers.base import Layer, arg, positive_int, register
from cnndsl.layers.conv import need_image


@register("shuffle")
@dataclass(frozen=True)
class Shuffle(Layer):
    """shuffle GROUPS: interleave the channels of GROUPS groups (ShuffleNetV2's channel_shuffle)

    Channel ``i * C/GROUPS + j`` moves to ``j * GROUPS + i``: the input is viewed as
    GROUPS x C/GROUPS x H x W, the first two axes are swapped, and the result is flattened back.
    """

    groups: int = arg(positive_int, pos=True)

    category = "reshape"
    onnx_ops = "Reshape, Transpose, Reshape"

    def infer(self, shapes):
        c, h, w = need_image("shuffle", shapes[0])
        if c % self.groups:
            raise RuleError(f"input has {c} channels, not divisible by shuffle groups={self.groups}",
                            "GROUPS must divide the channels (ShuffleNetV2 shuffles 2 groups)", field="groups")
        return c, h, w

    def emit(self, b, node, xs):
        c, h, w = node.in_shapes[0]
        # 0 in a Reshape's shape copies that axis from the input: the (dynamic) batch
        split = b.ints(node.name + ".split_shape", [0, self.groups, c // self.groups, h, w])
        merged = b.ints(node.name + ".merged_shape", [0, c, h, w])
        x = b.node("Reshape", [xs[0], split], node.name + ".split")
        x = b.node("Transpose", [x], node.name + ".swap", perm=[0, 2, 1, 3, 4])
        return b.node("Reshape", [x, merged], node.name)
