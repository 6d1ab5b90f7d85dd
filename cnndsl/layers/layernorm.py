"""Layer normalisation over the channels (ConvNeXt), at each pixel or over a flat feature vector."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.layers.base import Layer, arg, need_channels, positive_number, register
from cnndsl.model.ir import TRAINABLE, Param

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


@register("layernorm")
@dataclass(frozen=True)
class LayerNorm(Layer):
    """layernorm [eps=1e-5]: normalise over the channels at each pixel (or over a flat input's features)

    (x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) variance taken over the C
    channels of each pixel: ConvNeXt's LayerNorm2d, and its block's LayerNorm on NHWC; on a flat
    input, PyTorch's LayerNorm over the features. Owns .weight and .bias (C each). Unlike
    batchnorm it uses the sample's own statistics, so it never folds into the layer before.
    """

    eps: float = arg(positive_number, 1e-5)

    category = "norm"
    init_transparent = True  # a per-channel scale and shift after normalising: what follows decides
    counts = "2C trained (`weight`, `bias`)"
    onnx_ops = "LayerNormalization (between two Transposes on CxHxW)"

    def infer(self, shapes):
        return need_channels("layernorm", shapes[0])

    def params(self, prefix, shapes, out):
        c = (shapes[0][0],)
        return [Param(prefix + ".weight", c, TRAINABLE, "ones"), Param(prefix + ".bias", c, TRAINABLE, "zeros")]

    def emit(self, b, node, xs):
        weights = [b.param(p) for p in node.params]
        if len(node.in_shapes[0]) == 1:
            return b.node("LayerNormalization", [xs[0], *weights], node.name, axis=-1, epsilon=self.eps)
        # LayerNormalization normalises the last axes: put the channels last, as ConvNeXt does
        x = b.node("Transpose", xs, node.name + ".nhwc", perm=TO_NHWC)
        x = b.node("LayerNormalization", [x, *weights], node.name + ".normalised", axis=-1, epsilon=self.eps)
        return b.node("Transpose", [x], node.name, perm=TO_NCHW)
