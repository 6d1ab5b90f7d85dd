"""Convolutions: learned (conv) and fixed-kernel (fixedconv)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape, show
from cnndsl.layers.base import (
    Layer,
    arg,
    boolean,
    float32,
    fused_activation,
    padding,
    positive_int,
    positive_pair,
    register,
)
from cnndsl.model.ir import CONSTANT, TRAINABLE, Param
from cnndsl.model.shapes import same_pads, window_out


def resolve_pads(pad, hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) for a padding option on an HxW input."""
    if pad != "same":
        return pad
    top, bottom = same_pads(hw[0], kernel[0], stride[0], dilation[0])
    left, right = same_pads(hw[1], kernel[1], stride[1], dilation[1])
    return top, left, bottom, right


def window_shape(what, hw, kernel, stride, pads, dilation=(1, 1), ceil=False) -> tuple[int, int]:
    """Output HxW of a 2-D window op, or a RuleError that says how to fix it."""
    out = []
    for axis in range(2):
        eff = dilation[axis] * (kernel[axis] - 1) + 1
        padded = hw[axis] + pads[axis] + pads[axis + 2]
        if eff > padded:
            need = (eff - hw[axis] + 1) // 2
            raise RuleError(
                f"{what} {fmt_shape(kernel)} on a {fmt_shape(hw)} input gives no output: the "
                f"{'dilated ' if eff != kernel[axis] else ''}kernel spans {eff} but the padded input is {padded}",
                f"pad it (pad={need}) or use a smaller kernel", field="kernel")
        out.append(window_out(hw[axis], kernel[axis], stride[axis], pads[axis], pads[axis + 2],
                              dilation[axis], ceil))
    return out[0], out[1]


def need_image(what: str, shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise RuleError(f"{what} needs a CxHxW input, got {fmt_shape(shape)}",
                        "a flattened input has no height and width; move this layer before `flatten`")
    return shape


@register("conv")
@dataclass(frozen=True)
class Conv(Layer):
    """conv FILTERS KERNEL [ACT] [stride=S] [pad=same|valid|P|PHxPW|(t,l,b,r)] [dilation=D] [groups=G] [bias=false]

    e.g. ``conv 64 3x3 pad=same relu``; a fused ACT becomes its own node, named by the next index.
    """

    filters: int = arg(positive_int, pos=True)
    kernel: tuple[int, int] = arg(positive_pair, pos=True)
    act: str | None = fused_activation()
    stride: tuple[int, int] = arg(positive_pair, 1)
    pad: object = arg(padding, 0, words=frozenset({"same", "valid"}))
    dilation: tuple[int, int] = arg(positive_pair, 1)
    groups: int = arg(positive_int, 1)
    bias: bool = arg(boolean, True)

    fused_act = True
    category = "conv"
    absorbs_affine = True
    counts = "FILTERS·(C/G)·kh·kw + FILTERS bias"
    onnx_ops = "Conv"

    def with_bias(self) -> Conv:
        """This conv with a bias, to take a folded per-channel shift (weight axis 0 is the output channel)."""
        return dataclasses.replace(self, bias=True)

    def pads(self, shape):
        return resolve_pads(self.pad, shape[1:], self.kernel, self.stride, self.dilation)

    def infer(self, shapes):
        c, h, w = need_image("conv", shapes[0])
        if c % self.groups:
            raise RuleError(f"input has {c} channels, not divisible by groups={self.groups}",
                            "groups must divide both the input channels and the filters", field="groups")
        if self.filters % self.groups:
            raise RuleError(f"{self.filters} filters are not divisible by groups={self.groups}",
                            "groups must divide both the input channels and the filters", field="groups")
        ho, wo = window_shape("conv", (h, w), self.kernel, self.stride, self.pads(shapes[0]), self.dilation)
        return self.filters, ho, wo

    def params(self, prefix, shapes, out):
        cin = shapes[0][0] // self.groups
        kh, kw = self.kernel
        fan_in, fan_out = cin * kh * kw, self.filters // self.groups * kh * kw
        ps = [Param(prefix + ".weight", (self.filters, cin, kh, kw), TRAINABLE, "auto", fan_in, fan_out)]
        if self.bias:
            ps.append(Param(prefix + ".bias", (self.filters,), TRAINABLE, "zeros"))
        return ps

    def macs(self, shapes, out):
        return out[0] * out[1] * out[2] * (shapes[0][0] // self.groups) * self.kernel[0] * self.kernel[1]

    def emit(self, b, node, xs):
        inputs = [xs[0]] + [b.param(p) for p in node.params]
        return b.node("Conv", inputs, node.name, kernel_shape=list(self.kernel), strides=list(self.stride),
                      pads=list(self.pads(node.in_shapes[0])), dilations=list(self.dilation), group=self.groups)


def _kernels(v, field):
    """A nested list of numbers (KHxKW, OUTxKHxKW or OUTxINxKHxKW) as (flat values, 4-D shape).

    Plain Python on purpose: checking a spec must not import numpy.
    """
    if not isinstance(v, list):
        raise RuleError(f"{field} must be a matrix such as [[0,1,0],[1,-4,1],[0,1,0]], not {show(v)}",
                        field=field)
    shape = _nested_shape(v, field)
    if not 2 <= len(shape) <= 4 or 0 in shape:
        raise RuleError(f"a kernel must be a 2-D, 3-D or 4-D array of numbers, got {len(shape)}-D",
                        "one matrix [[...],...], a list of matrices, or a list of lists of matrices",
                        field=field)
    flat: list[float] = []
    _flatten(v, flat, field)
    if len(shape) == 2:  # one map on one input channel
        shape = (1, 1, *shape)
    elif len(shape) == 3:  # one map per matrix, each on one input channel
        shape = (shape[0], 1, shape[1], shape[2])
    return tuple(flat), tuple(shape)


def _nested_shape(v, field) -> tuple[int, ...]:
    if not isinstance(v, list):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RuleError(f"a kernel holds numbers, not {show(v)}", field=field)
        return ()
    shapes = {_nested_shape(item, field) for item in v}
    if len(shapes) > 1:
        raise RuleError("the kernel's rows have different lengths or depths",
                        "every row of a kernel matrix needs the same number of values", field=field)
    return (len(v), *(shapes.pop() if shapes else ()))


def _flatten(v, out: list, field: str) -> None:
    for item in v:
        if isinstance(item, list):
            _flatten(item, out, field)
        else:
            out.append(float32(item, field))


def _bias(v, field):
    if v is None:
        return None
    if isinstance(v, bool):
        raise RuleError(f"bias must be a number or a list of numbers, not {show(v)}", field=field)
    if isinstance(v, (int, float)):
        return (float32(v, field),)
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return tuple(float32(x, field) for x in v)
    raise RuleError(f"bias must be a number or a list of numbers, not {show(v)}", field=field)


@register("fixedconv")
@dataclass(frozen=True)
class FixedConv(Layer):
    """fixedconv KERNEL [ACT] [bias=B] [stride=S] [pad=...] [dilation=D]

    e.g. ``fixedconv [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] pad=same``: a constant kernel (not trained).
    KERNEL is one matrix (one output map), a list of matrices (one map each) or OUTxINxKHxKW.
    """

    kernel: tuple = arg(_kernels, pos=True)
    act: str | None = fused_activation()
    bias: tuple | None = arg(_bias, None)
    stride: tuple[int, int] = arg(positive_pair, 1)
    pad: object = arg(padding, 0, words=frozenset({"same", "valid"}))
    dilation: tuple[int, int] = arg(positive_pair, 1)

    fused_act = True
    category = "filter"
    counts = "none: the kernel is a constant"
    onnx_ops = "Conv"

    @property
    def kshape(self) -> tuple[int, int, int, int]:
        return tuple(self.kernel[1])

    def describe(self):
        o, i, kh, kw = self.kshape
        return f"{o}x{i}x{kh}x{kw} fixed" + (f" pad={show(self.pad)}" if self.pad != (0, 0, 0, 0) else "")

    def pads(self, shape):
        return resolve_pads(self.pad, shape[1:], self.kshape[2:], self.stride, self.dilation)

    def infer(self, shapes):
        c, h, w = need_image("fixedconv", shapes[0])
        o, i, kh, kw = self.kshape
        if i != c:
            raise RuleError(f"the kernel has {i} input channel{'s' if i > 1 else ''} but the input has {c}",
                            f"write one {kh}x{kw} matrix per input channel for each output map "
                            f"(an OUTx{c}x{kh}x{kw} array)", field="kernel")
        if self.bias is not None and len(self.bias) not in (1, o):
            raise RuleError(f"bias has {len(self.bias)} values for {o} output maps",
                            "give one bias, or one per output map", field="bias")
        ho, wo = window_shape("fixedconv", (h, w), (kh, kw), self.stride, self.pads(shapes[0]), self.dilation)
        return o, ho, wo

    def params(self, prefix, shapes, out):
        o = self.kshape[0]
        ps = [Param(prefix + ".weight", self.kshape, CONSTANT, "value", value=self.kernel[0])]
        if self.bias is not None:
            values = self.bias * o if len(self.bias) == 1 else self.bias
            ps.append(Param(prefix + ".bias", (o,), CONSTANT, "value", value=values))
        return ps

    def macs(self, shapes, out):
        o, i, kh, kw = self.kshape
        return out[0] * out[1] * out[2] * i * kh * kw

    def emit(self, b, node, xs):
        inputs = [xs[0]] + [b.param(p) for p in node.params]
        return b.node("Conv", inputs, node.name, kernel_shape=list(self.kshape[2:]), strides=list(self.stride),
                      pads=list(self.pads(node.in_shapes[0])), dilations=list(self.dilation), group=1)
