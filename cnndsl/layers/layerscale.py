"""Layer scale (ConvNeXt, CaiT): a learned per-channel multiplier, started small."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.layers.base import Layer, arg, need_channels, number, register
from cnndsl.model.ir import TRAINABLE, Param


@register("layerscale")
@dataclass(frozen=True)
class LayerScale(Layer):
    """layerscale [INIT]: multiply each channel by a learned scale, INIT at first (1e-6 by default)

    ConvNeXt's layer scale. Its one parameter is named by the layer itself, with no suffix, as in
    torchvision: ``layer_scale: layerscale`` in scope ``features.1.0`` owns
    ``features.1.0.layer_scale``, shaped Cx1x1 on a CxHxW input (C on a flat one).
    """

    init: float = arg(number, 1e-6, pos=True)

    category = "norm"
    init_transparent = True  # a per-channel scale: what follows decides the init
    counts = "C trained (named as the layer, no `.weight`)"
    onnx_ops = "Mul"

    def infer(self, shapes):
        return need_channels("layerscale", shapes[0])

    def params(self, prefix, shapes, out):
        c = shapes[0][0]
        shape = (c, 1, 1) if len(shapes[0]) == 3 else (c,)  # broadcasts over H and W
        return [Param(prefix, shape, TRAINABLE, "fill", value=self.init)]

    def emit(self, b, node, xs):
        # the weight has the node's name, and ONNX names each value once: the product is named apart
        return b.node("Mul", [xs[0], b.param(node.params[0])], node.name + ".scaled")
