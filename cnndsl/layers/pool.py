"""Pooling: max, average, global, and adaptive average (lowered to a plain pool)."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.lang.show import fmt_shape, show
from cnndsl.layers.base import Layer, arg, boolean, one_of, padding, positive_pair, register
from cnndsl.layers.conv import need_image, resolve_pads, window_shape
from cnndsl.model.shapes import adaptive_as_pool, adaptive_windows

_NO_STRIDE = None


def _stride(v, field):
    return None if v is None else positive_pair(v, field)


@dataclass(frozen=True)
class _Pool(Layer):
    """Shared by maxpool and avgpool."""

    op = "?"
    category = "pool"

    def stride_hw(self):
        return self.stride if self.stride is not None else self.kernel

    def pads(self, shape):
        return resolve_pads(self.pad, shape[1:], self.kernel, self.stride_hw(), (1, 1))

    def infer(self, shapes):
        c, h, w = need_image(self.kind, shapes[0])
        pads = self.pads(shapes[0])
        for axis in range(2):
            if 2 * max(pads[axis], pads[axis + 2]) > self.kernel[axis]:
                raise RuleError(f"padding {show(pads)} is more than half the {fmt_shape(self.kernel)} window",
                                "a pool's padding may be at most half its kernel (as in PyTorch)", field="pad")
        ho, wo = window_shape(self.kind, (h, w), self.kernel, self.stride_hw(), pads,
                              ceil=self.round == "ceil")
        self.onnx_window(shapes[0])  # refuse here what cannot be emitted exactly
        return c, ho, wo

    def onnx_window(self, shape) -> tuple[tuple[int, int, int, int], int]:
        """(pads, ceil_mode) that give exactly our windows AND that ONNX's shape inference sizes
        right: some versions of it do not drop a last window that starts in the end padding.

        ceil_mode is set only when rounding up changes the size. Where one axis rounds up and the
        other drops its last window, the first axis is rounded up with end padding instead (exact
        for max, and for averages that ignore padding).
        """
        pads = self.pads(shape)
        hw, stride = shape[1:], self.stride_hw()
        floor = window_shape(self.kind, hw, self.kernel, stride, pads)
        if self.round != "ceil":
            return pads, 0
        out = window_shape(self.kind, hw, self.kernel, stride, pads, ceil=True)
        grows = [out[a] != floor[a] for a in range(2)]
        drops = [-(-(hw[a] + pads[a] + pads[a + 2] - self.kernel[a]) // stride[a]) + 1 != out[a] for a in range(2)]
        if not any(grows) or not any(drops):
            return pads, int(any(grows))
        if getattr(self, "count_pad", False) and any(pads):
            raise RuleError("this ceil-mode average rounds up on one axis and drops a last window on the other; "
                            "with count_pad=true ONNX cannot express it exactly",
                            "use count_pad=false, or explicit padding in floor mode", field="round")
        new = list(pads)
        for a in range(2):
            if grows[a]:
                new[a + 2] += (out[a] - 1) * stride[a] + self.kernel[a] - (hw[a] + pads[a] + pads[a + 2])
                if new[a + 2] >= self.kernel[a]:
                    raise RuleError("this ceil-mode pool cannot be written exactly in ONNX (rounding up one axis "
                                    "while the other drops its last window needs padding as large as the kernel)",
                                    "use floor mode with explicit padding", field="round")
        return tuple(new), 0

    def attrs(self, node) -> dict:
        pads, ceil_mode = self.onnx_window(node.in_shapes[0])
        return dict(kernel_shape=list(self.kernel), strides=list(self.stride_hw()), pads=list(pads),
                    ceil_mode=ceil_mode)


@register("maxpool")
@dataclass(frozen=True)
class MaxPool(_Pool):
    """maxpool KERNEL [stride=S] [pad=P|same] [floor|ceil]: stride defaults to the kernel"""

    onnx_ops = "MaxPool"

    kernel: tuple[int, int] = arg(positive_pair, pos=True)
    stride: tuple[int, int] | None = arg(_stride, _NO_STRIDE)
    pad: object = arg(padding, 0, words=frozenset({"same", "valid"}))
    round: str = arg(one_of("floor", "ceil"), "floor", words=frozenset({"floor", "ceil"}))

    def emit(self, b, node, xs):
        return b.node("MaxPool", xs, node.name, **self.attrs(node))


@register("avgpool")
@dataclass(frozen=True)
class AvgPool(_Pool):
    """avgpool KERNEL [stride=S] [pad=P|same] [floor|ceil] [count_pad=true|false]

    count_pad=true (PyTorch's default, and ours) counts padded zeros in the average.
    """

    onnx_ops = "AveragePool"

    kernel: tuple[int, int] = arg(positive_pair, pos=True)
    stride: tuple[int, int] | None = arg(_stride, _NO_STRIDE)
    pad: object = arg(padding, 0, words=frozenset({"same", "valid"}))
    round: str = arg(one_of("floor", "ceil"), "floor", words=frozenset({"floor", "ceil"}))
    count_pad: bool = arg(boolean, True)

    def emit(self, b, node, xs):
        # with no padding written, counting it changes nothing (and must not count padding added
        # by onnx_window to round up)
        include = int(self.count_pad and any(self.pads(node.in_shapes[0])))
        return b.node("AveragePool", xs, node.name, count_include_pad=include, **self.attrs(node))


class _GlobalPool(Layer):
    """Shared by globalavgpool and globalmaxpool: CxHxW -> Cx1x1."""

    category = "pool"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.onnx_ops = cls.op

    def infer(self, shapes):
        c, _, _ = need_image(self.kind, shapes[0])
        return c, 1, 1

    def emit(self, b, node, xs):
        return b.node(self.op, xs, node.name)


@register("globalavgpool")
class GlobalAvgPool(_GlobalPool):
    """globalavgpool: one average per channel (CxHxW -> Cx1x1)"""

    op = "GlobalAveragePool"


@register("globalmaxpool")
class GlobalMaxPool(_GlobalPool):
    """globalmaxpool: one maximum per channel (CxHxW -> Cx1x1)"""

    op = "GlobalMaxPool"


@register("adaptiveavgpool")
@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """adaptiveavgpool HxW: PyTorch's AdaptiveAvgPool2d (window i spans floor(i*in/out) to ceil((i+1)*in/out))

    A plain average pool where the windows are even (the input a multiple of the output); where
    they are not (GoogLeNet's auxiliary heads pool 14x14 to 4x4), two products with constant
    averaging matrices, one per axis.
    """

    size: tuple[int, int] = arg(positive_pair, pos=True)

    category = "pool"
    onnx_ops = "AveragePool; MatMul where the windows are uneven; nothing when it is the identity"

    def lowered(self, shape):
        """(kernel, stride) per axis of the equal plain pool, or None when the windows are uneven."""
        kernel, stride = [], []
        for axis in range(2):
            got = None if self.size[axis] > shape[1 + axis] else adaptive_as_pool(shape[1 + axis], self.size[axis])
            if got is None:
                return None
            kernel.append(got[0])
            stride.append(got[1])
        return tuple(kernel), tuple(stride)

    def infer(self, shapes):
        c, _, _ = need_image("adaptiveavgpool", shapes[0])
        return (c,) + self.size

    def emit(self, b, node, xs):
        shape = node.in_shapes[0]
        if tuple(shape[1:]) == self.size:
            return xs[0]
        if self.size == (1, 1):
            return b.node("GlobalAveragePool", xs, node.name)
        plain = self.lowered(shape)
        if plain is not None:
            kernel, stride = plain
            return b.node("AveragePool", xs, node.name, kernel_shape=list(kernel), strides=list(stride),
                          pads=[0, 0, 0, 0], ceil_mode=0, count_include_pad=0)
        (h, w), (oh, ow) = shape[1:], self.size
        columns = b.matrix(node.name + ".columns", _transposed(_averaging(w, ow)))  # W x out_w
        rows = b.matrix(node.name + ".rows", _averaging(h, oh))  # out_h x H
        x = b.node("MatMul", [xs[0], columns], node.name + ".width")  # N x C x H x out_w
        return b.node("MatMul", [rows, x], node.name)  # broadcast over N and C: N x C x out_h x out_w


def _averaging(size: int, out: int) -> list[list[float]]:
    """The out x size matrix whose row i averages adaptive window i."""
    rows = []
    for start, end in adaptive_windows(size, out):
        rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(size)])
    return rows


def _transposed(m: list[list[float]]) -> list[list[float]]:
    return [list(col) for col in zip(*m, strict=True)]
