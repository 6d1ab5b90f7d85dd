"""Upsampling (resizing) by a scale or to a size: nearest neighbour or bilinear, as PyTorch's
nn.Upsample and F.interpolate compute them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape, show
from cnndsl.layers.base import Layer, TensorRef, arg, boolean, one_of, register, size_pair, tensor_ref
from cnndsl.layers.conv import need_image
from cnndsl.layers.crop import target_size

MODES = ("nearest", "bilinear")


def _scale(v, field):
    """None, or a scale factor: a positive number, or one per axis (HxW, or (sh, sw))."""
    if v is None:
        return None
    pair = v if isinstance(v, tuple) else (v, v)
    if len(pair) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in pair):
        raise RuleError(f"{field} must be a number or one per axis (2, 2x1 or (1.5, 2)), not {show(v)}", field=field)
    if min(pair) <= 0 or max(pair) > 1e6 or not all(math.isfinite(x) for x in pair):
        raise RuleError(f"{field} must be a positive number, not {show(v)}", field=field)
    return tuple(pair)


@register("upsample", "resize")
@dataclass(frozen=True)
class Upsample(Layer):
    """upsample [SCALE] [nearest|bilinear] [size=HxW] [to=TENSOR] [align_corners=true]: enlarge each map

    By a SCALE (``upsample 2``: the output is floor(in x SCALE) on each axis), to a size
    (``size=520x520``), or to the size of an earlier tensor (``to=input``: FCN and DeepLab bring
    their class scores back to the image's size). ``nearest`` (the default) repeats pixels; ``bilinear``
    interpolates, with PyTorch's ``align_corners`` (false by default). Exactly PyTorch's
    F.interpolate: ONNX Resize with the same coordinate transformation.
    """

    scale: tuple | None = arg(_scale, None, pos=True)
    mode: str = arg(one_of(*MODES), "nearest", words=frozenset(MODES))
    size: tuple[int, int] | None = arg(size_pair, None)
    to: TensorRef | None = arg(tensor_ref, None, tensor=True)
    align_corners: bool = arg(boolean, False)

    category = "reshape"
    onnx_ops = "Resize"

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        given = (self.scale is not None) + (self.size is not None) + (self.to is not None)
        if given != 1:
            raise RuleError("upsample needs one of SCALE, size=HxW or to=TENSOR" if not given else
                            "upsample takes one of SCALE, size= and to=, not several",
                            "e.g. `upsample 2`, `upsample size=520x520 bilinear` or `upsample to=input bilinear`",
                            field="#kind")
        if self.scale is not None:
            return math.floor(h * self.scale[0]), math.floor(w * self.scale[1])
        return target_size(self, "upsample")

    def infer(self, shapes):
        c, h, w = need_image("upsample", shapes[0])
        if self.align_corners and self.mode != "bilinear":
            raise RuleError("align_corners applies to bilinear upsampling only",
                            "write `upsample ... bilinear align_corners=true`, or leave align_corners out",
                            field="align_corners")
        ho, wo = self.out_size(h, w)
        if ho <= 0 or wo <= 0:
            raise RuleError(f"upsample by {show(self.scale)} makes {fmt_shape((h, w))} empty",
                            "use a larger scale", field="scale")
        return c, ho, wo

    def coordinates(self) -> str:
        """ONNX Resize's coordinate_transformation_mode for PyTorch's rule."""
        if self.mode == "nearest":
            return "asymmetric"  # src = floor(dst / scale): PyTorch's legacy "nearest"
        return "align_corners" if self.align_corners else "half_pixel"

    def coordinate_scales(self, shape, out) -> tuple[float, float]:
        """The scale PyTorch maps each axis's coordinates by, for a SCALE: the one written, except
        where its own rules take another (ATen's UpSample.h): an axis that keeps its size is
        copied, and a nearest axis that doubles takes pixel dst // 2."""
        scales = []
        for a in range(2):
            size, made = shape[1 + a], out[1 + a]
            if made == size:
                scales.append(1.0)
            elif self.mode == "nearest" and made == 2 * size:
                scales.append(2.0)
            else:
                scales.append(float(self.scale[a]))
        return scales[0], scales[1]

    def emit(self, b, node, xs):
        attrs = {"mode": "nearest" if self.mode == "nearest" else "linear",
                 "coordinate_transformation_mode": self.coordinates(), "axes": [2, 3]}
        if self.mode == "nearest":
            attrs["nearest_mode"] = "floor"
        from fractions import Fraction  # here: it imports decimal, which checking a spec does not need

        shape, out = node.in_shapes[0], node.out_shape
        if self.scale is not None and not self.align_corners:
            scales = self.coordinate_scales(shape, out)
            exact = all(Fraction(out[1 + a], shape[1 + a]) == Fraction(repr(scales[a])) for a in range(2))  # as written
            if not exact:  # PyTorch maps coordinates by the scale, not by out/in: give ONNX the same
                return b.node("Resize", [xs[0], "", b.floats(node.name + ".scales", list(scales))], node.name,
                              **attrs)
        # sizes: exact, where out/in is the scale (ONNX sizes by a scale in float32, which can lose a pixel)
        sizes = b.ints(node.name + ".sizes", list(out[1:]))
        return b.node("Resize", [xs[0], "", "", sizes], node.name, **attrs)
