"""Transposed convolution (U-Net's up-convolution, a decoder's learned upsampling)."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape, show
from cnndsl.layers.base import (
    Layer,
    arg,
    boolean,
    fused_activation,
    nonneg_int,
    positive_int,
    positive_pair,
    register,
    size_pair,
)
from cnndsl.layers.conv import need_image
from cnndsl.model.ir import TRAINABLE, Param


def _pair(v, field):
    """A non-negative int or HxW: padding and output padding (the same on both sides of an axis)."""
    pair = (v, v) if isinstance(v, int) and not isinstance(v, bool) else v
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise RuleError(f"{field} must be an integer or HxW (e.g. 1 or 1x0), not {show(v)}",
                        "a transposed convolution pads both sides of an axis alike, as PyTorch's", field=field)
    return tuple(nonneg_int(x, field) for x in pair)


@register("convtranspose", "deconv")
@dataclass(frozen=True)
class ConvTranspose(Layer):
    """convtranspose FILTERS KERNEL [ACT] [stride=S] [pad=P] [output_pad=P] [dilation=D] [groups=G] [size=HxW]

    Also ``bias=false``. e.g. ``convtranspose 512 2x2 stride=2`` (U-Net's up-conv: twice the height and width). Each
    output axis is (in - 1) x stride - 2 x pad + dilation x (kernel - 1) + output_pad + 1, as in
    PyTorch's ConvTranspose2d; ``size=HxW`` asks for an output size and sets output_pad to reach
    it (an error where no output_pad can). The weight is (C_in, FILTERS/G, kh, kw), PyTorch's layout.
    """

    filters: int = arg(positive_int, pos=True)
    kernel: tuple[int, int] = arg(positive_pair, pos=True)
    act: str | None = fused_activation()
    stride: tuple[int, int] = arg(positive_pair, 1)
    pad: tuple[int, int] = arg(_pair, 0)
    output_pad: tuple[int, int] = arg(_pair, 0)
    dilation: tuple[int, int] = arg(positive_pair, 1)
    groups: int = arg(positive_int, 1)
    bias: bool = arg(boolean, True)
    size: tuple[int, int] | None = arg(size_pair, None)

    fused_act = True
    category = "conv"
    counts = "C·(FILTERS/G)·kh·kw + FILTERS bias"
    onnx_ops = "ConvTranspose"

    def base(self, hw) -> tuple[int, int]:
        """The output size without output padding."""
        return tuple((hw[a] - 1) * self.stride[a] - 2 * self.pad[a] + self.dilation[a] * (self.kernel[a] - 1) + 1
                     for a in range(2))

    def out_pad(self, hw) -> tuple[int, int]:
        """The output padding in force: written, or the one that reaches ``size``."""
        if self.size is None:
            return self.output_pad
        base = self.base(hw)
        return tuple(self.size[a] - base[a] for a in range(2))

    def infer(self, shapes):
        c, h, w = need_image("convtranspose", shapes[0])
        for count, what in ((c, "input channels"), (self.filters, "filters")):
            if count % self.groups:
                raise RuleError(f"{count} {what} are not divisible by groups={self.groups}",
                                "groups must divide both the input channels and the filters", field="groups")
        if self.size is not None and self.output_pad != (0, 0):
            raise RuleError("give size= or output_pad=, not both", "size= sets the output padding itself",
                            field="output_pad")
        base, pads = self.base((h, w)), self.out_pad((h, w))
        for a in range(2):
            # PyTorch allows up to max(stride, dilation) - 1; ONNX runtimes refuse more than stride - 1
            limit = self.stride[a]
            if 0 <= pads[a] < limit:
                continue
            if self.size is not None:
                reach = f"{base[a]}" if limit == 1 else f"{base[a]} to {base[a] + limit - 1}"
                raise RuleError(
                    f"convtranspose cannot make {fmt_shape(self.size)} from {fmt_shape((h, w))}: with kernel "
                    f"{fmt_shape(self.kernel)}, stride {fmt_shape(self.stride)} and pad {fmt_shape(self.pad)} "
                    f"its {'height' if a == 0 else 'width'} can be {reach}",
                    "change the stride, kernel or padding, or ask for a size it can make", field="size")
            raise RuleError(f"output_pad {fmt_shape(self.output_pad)} must be smaller than the stride ({limit} "
                            f"here)", "output padding adds at most stride - 1 rows and columns (onnxruntime "
                            "refuses more, even where PyTorch's dilation would allow it)", field="output_pad")
        ho, wo = base[0] + pads[0], base[1] + pads[1]
        if ho <= 0 or wo <= 0:
            raise RuleError(f"convtranspose gives an empty output {fmt_shape((ho, wo))} from {fmt_shape((h, w))}",
                            "use less padding", field="pad")
        return self.filters, ho, wo

    def params(self, prefix, shapes, out):
        cin = shapes[0][0]
        kh, kw = self.kernel
        per_group = self.filters // self.groups
        ps = [Param(prefix + ".weight", (cin, per_group, kh, kw), TRAINABLE, "auto",
                    fan_in=per_group * kh * kw, fan_out=cin // self.groups * kh * kw)]
        if self.bias:
            ps.append(Param(prefix + ".bias", (self.filters,), TRAINABLE, "zeros"))
        return ps

    def macs(self, shapes, out):
        c, h, w = shapes[0]
        return c * h * w * (self.filters // self.groups) * self.kernel[0] * self.kernel[1]

    def emit(self, b, node, xs):
        inputs = [xs[0]] + [b.param(p) for p in node.params]
        ph, pw = self.pad
        return b.node("ConvTranspose", inputs, node.name, kernel_shape=list(self.kernel), strides=list(self.stride),
                      pads=[ph, pw, ph, pw], output_padding=list(self.out_pad(node.in_shapes[0][1:])),
                      dilations=list(self.dilation), group=self.groups)
