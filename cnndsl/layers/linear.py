"""A linear layer along the channels at each pixel (ConvNeXt's pointwise nn.Linear on NHWC)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.layers.base import need_channels, register
from cnndsl.layers.dense import Dense


@register("linear")
@dataclass(frozen=True)
class Linear(Dense):
    """linear UNITS [ACT] [bias=false]: dense on the channels of each pixel (CxHxW -> UNITSxHxW); on flat input, dense

    Owns .weight (UNITS x C, PyTorch's Linear layout, not a conv's UNITS x C x 1 x 1) and .bias,
    so weights load by torchvision's names (ConvNeXt's ``block.3``, ``block.5``).
    """

    counts = "UNITS·C + UNITS"
    onnx_ops = "Unsqueeze (of the weight) and a 1x1 Conv on CxHxW; Gemm on a flat input"

    def infer(self, shapes):
        return (self.units, *need_channels("linear", shapes[0])[1:])

    def macs(self, shapes, out):
        return self.units * math.prod(shapes[0])  # UNITS x C at each of the H x W pixels

    def emit(self, b, node, xs):
        if len(node.in_shapes[0]) == 1:
            return super().emit(b, node, xs)
        weight, *bias = [b.param(p) for p in node.params]
        # the stored weight keeps PyTorch's UNITS x C; the graph views it as UNITS x C x 1 x 1
        axes = b.ints(node.name + ".kernel_axes", [2, 3])
        kernel = b.node("Unsqueeze", [weight, axes], node.name + ".kernel")
        return b.node("Conv", [xs[0], kernel, *bias], node.name, kernel_shape=[1, 1])
