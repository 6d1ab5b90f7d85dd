"""Center crop (U-Net's "copy and crop"): the middle HxW of each map, no parameters."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape
from cnndsl.layers.base import Layer, TensorRef, arg, register, size_pair, tensor_ref
from cnndsl.layers.conv import need_image


def target_size(layer, what: str) -> tuple[int, int]:
    """The HxW a layer with ``size`` and ``to`` arguments aims at: exactly one of them given."""
    if (layer.size is None) == (layer.to is None):
        raise RuleError(f"{what} needs either SIZE or to=TENSOR", f"e.g. `{what} 388x388` or `{what} to=input`",
                        field="#kind")
    if layer.to is not None:
        shape = layer.to.shape
        if len(shape) != 3:
            raise RuleError(f"to={layer.to} is {fmt_shape(shape)}, which has no height and width",
                            "name a CxHxW tensor", field="to")
        return shape[1], shape[2]
    return layer.size


@register("crop")
@dataclass(frozen=True)
class Crop(Layer):
    """crop SIZE | crop to=TENSOR: the center HxW of each map (U-Net's copy and crop)

    The window starts at ((H - h) // 2, (W - w) // 2): where the difference is odd, the extra row
    or column is dropped at the bottom or right. ``concat crop { ... }`` crops its branches so.
    """

    size: tuple[int, int] | None = arg(size_pair, None, pos=True)
    to: TensorRef | None = arg(tensor_ref, None, tensor=True)

    category = "reshape"
    onnx_ops = "Slice"

    def window(self, shape) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the kept window."""
        _, h, w = shape
        th, tw = target_size(self, "crop")
        return (h - th) // 2, (w - tw) // 2, th, tw

    def infer(self, shapes):
        c, h, w = need_image("crop", shapes[0])
        th, tw = target_size(self, "crop")
        if th > h or tw > w:
            raise RuleError(f"cannot crop {fmt_shape((th, tw))} out of a {fmt_shape((h, w))} input",
                            "a crop keeps part of its input: the size must be at most the input's",
                            field="to" if self.to is not None else "size")
        return c, th, tw

    def emit(self, b, node, xs):
        top, left, h, w = self.window(node.in_shapes[0])
        if (h, w) == tuple(node.in_shapes[0][1:]):
            return b.node("Identity", xs, node.name)
        starts = b.ints(node.name + ".starts", [top, left])
        ends = b.ints(node.name + ".ends", [top + h, left + w])
        axes = b.ints(node.name + ".axes", [2, 3])
        return b.node("Slice", [xs[0], starts, ends, axes], node.name)
