"""Lifting the ops that move channels or pixels about: the transposes around a channels-last
stretch (ConvNeXt's permute, layer norm, pointwise linears, permute back), slices (a crop of
height and width, a share of the channels), Split, and the Reshape-Transpose-Reshape of a
channel shuffle.

A tensor's layout is worked out once, forwards: the input is NCHW; Transpose(0, 2, 3, 1) of an
NCHW tensor is channels-last (NHWC); Transpose(0, 3, 1, 2) of that is NCHW again; other ops keep
their input's layout. Only ops that mean the same thing channels-last (activations, a layer norm
over the last axis, a matrix product on the last axis, a bias add) may read an NHWC tensor; the
two transposes themselves become nothing, as in the spec, where `layernorm` and `linear` work on
the channels of each pixel whatever the exporter's layout.
"""

from __future__ import annotations

import numpy as np

from cnndsl.importer.load import Op
from cnndsl.importer.values import dims_text, float_text

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
NHWC_OPS = {"Transpose", "LayerNormalization", "MatMul", "Add", "Mul", "Gelu", "Relu", "Sigmoid", "Tanh",
            "HardSwish", "HardSigmoid", "Clip", "LeakyRelu", "Elu", "Identity", "Dropout"}
SPLIT = "slice"  # the lifted kind of one share of the channels, until the tree makes it `concat split`


def layouts(ops: list[Op], input_name: str) -> set[str]:
    """The tensors that are channels-last (NHWC), worked out forwards from the NCHW input."""
    nhwc: set[str] = set()
    for op in ops:
        last = any(i in nhwc for i in op.inputs if i)
        if op.op == "Transpose":
            perm = [int(p) for p in op.attrs.get("perm", [])]
            last = (perm == TO_NHWC and not last) or (last and perm not in (TO_NCHW,))
        if last:
            nhwc.update(o for o in op.outputs if o)
    return nhwc


class ChannelOps:
    """The op handlers of ``lift._Lifter`` for layouts, slices and shuffles (a mixin: it uses the
    lifter's helpers ``fail``, ``data``, ``const``, ``layer``, ``weight``, ``only_use``)."""

    def channels_last(self, name: str) -> bool:
        return name in self.nhwc

    def op_Transpose(self, op: Op):
        perm = [int(p) for p in op.attrs.get("perm", [])]
        x = self.data(op)
        if perm == TO_NHWC and not self.channels_last(x) or perm == TO_NCHW and self.channels_last(x):
            return None  # the layout is the exporter's; the spec's layers say what they work on
        raise self.fail(op, f"a transpose {tuple(perm)}",
                        "cnndsl moves channels only channels-last and back around `layernorm` and `linear` "
                        "(ConvNeXt), and in `shuffle`")

    def op_LayerNormalization(self, op: Op):
        x = self.data(op)
        rank = self.rank(x)
        axis = int(op.attrs.get("axis", -1))
        flat = rank == 2 and not self.channels_last(x)
        if rank is None or axis % rank != rank - 1 or not (flat or rank == 4 and self.channels_last(x)):
            raise self.fail(op, f"a layer norm over axes {axis % rank if rank else axis}.. of a {rank}-D "
                            f"{'channels-last ' if self.channels_last(x) else ''}tensor",
                            "cnndsl's layernorm normalises the channels of each pixel (or a flat input's features)")
        if len(op.outputs) > 1 and any(self.consumers.get(o) for o in op.outputs[1:] if o):
            raise self.fail(op, "its mean or inverse deviation output is used")
        scale = self.const(op, 1, "scale")
        c = self.s.shape(x)[-1]
        weights = {"weight": self.weight(scale, (c,), _flat)}
        if len(op.inputs) > 2 and op.inputs[2]:
            weights["bias"] = self.weight(self.const(op, 2, "bias"), (c,), _flat)
        else:
            raise self.fail(op, "a layer norm without a bias", "cnndsl's layernorm has a weight and a bias")
        eps = float(op.attrs.get("epsilon", 1e-5))
        args = [] if self.floats_close(eps, 1e-5) else [f"eps={float_text(eps)}"]
        return [self.layer(op, "layernorm", args, [x], weights)]

    def linear_kernel(self, op: Op, w: str) -> str | None:
        """The initializer (units x C) behind a 1x1 conv's weight unsqueezed from it, as cnndsl
        writes `linear` on an image; None for a conv's own weight."""
        unsq = self.producer.get(w)
        if unsq is None or unsq.op != "Unsqueeze" or not unsq.inputs or unsq.inputs[0] not in self.s.initializers:
            return None
        stored = self.s.shape(unsq.inputs[0])
        out = self.s.shape(w)
        if stored is None or len(stored) != 2 or out is None or tuple(out) != (*stored, 1, 1):
            return None
        return unsq.inputs[0]

    def op_Slice(self, op: Op):
        x, window, shape = self.slice_window(op)
        if set(window) == {1} and len(shape) == 4:
            start, end = window[1]
            return [self.layer(op, SPLIT, [str(start), str(end)], [x])]
        inner = self.producer.get(x)
        outer = op
        while window and set(window) <= {2, 3} and inner is not None and inner.op == "Slice" \
                and self.only_use(x, outer):
            below, more, full = self.slice_window(inner)  # torch slices height, then width: one crop
            if not more or not set(more) <= {2, 3}:
                break
            for axis, (a, _) in more.items():
                top, end = window.get(axis, (0, shape[axis]))
                window[axis] = (a + top, a + end)
            self.absorbed.add(inner.index)
            x, shape, outer = below, full, inner
            inner = self.producer.get(x)
        if window and set(window) <= {2, 3} and len(shape) == 4:
            h0, h1 = window.get(2, (0, shape[2]))
            w0, w1 = window.get(3, (0, shape[3]))
            th, tw = h1 - h0, w1 - w0
            if (h0, w0) == ((shape[2] - th) // 2, (shape[3] - tw) // 2):
                return [self.layer(op, "crop", [f"{th}x{tw}"], [x])]
            raise self.fail(op, f"a crop of rows {h0}:{h1} and columns {w0}:{w1} of a {shape[2]}x{shape[3]} map",
                            "cnndsl's crop keeps the centre: it starts at ((H - h) // 2, (W - w) // 2)")
        if not window:
            return None
        raise self.fail(op, f"a slice of axes {sorted(window)} of a {dims_text(shape)} tensor", NEAREST_SLICE)

    def slice_window(self, op: Op) -> tuple[str, dict[int, tuple[int, int]], tuple]:
        """The sliced tensor, the [start, end) the op keeps of each axis it narrows, and its shape."""
        x = self.data(op)
        shape = self.s.shape(x)
        if shape is None or not all(isinstance(d, int) for d in shape[1:]):
            raise self.fail(op, "a slice of a tensor whose shape is not known")
        if self.s.opset < 10:
            starts, ends = self.ints(op, "starts", []), self.ints(op, "ends", [])
            axes = self.ints(op, "axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = (self.int_list(op, i, what) for i, what in ((1, "starts"), (2, "ends")))
            axes = self.int_list(op, 3, "axes") if len(op.inputs) > 3 and op.inputs[3] else list(range(len(starts)))
            steps = self.int_list(op, 4, "steps") if len(op.inputs) > 4 and op.inputs[4] else [1] * len(starts)
        rank = len(shape)
        window = {a % rank: _bounds(s, e, shape[a % rank]) for a, s, e in zip(axes, starts, ends, strict=True)}
        if any(step != 1 for step in steps) or 0 in window or len(window) != len(axes):
            raise self.fail(op, "a strided slice, or one of the batch", NEAREST_SLICE)
        return x, {a: b for a, b in window.items() if b != (0, shape[a])}, shape

    def int_list(self, op: Op, index: int, what: str) -> list[int]:
        return [int(v) for v in self.s.value(self.const(op, index, what)).reshape(-1)]

    def op_Split(self, op: Op):
        x = self.data(op)
        shape = self.s.shape(x)
        axis = int(op.attrs.get("axis", 0))
        if shape is None or len(shape) != 4 or axis % 4 != 1 or not isinstance(shape[1], int):
            raise self.fail(op, "a split along another axis than the channels", NEAREST_SLICE)
        if len(op.inputs) > 1 and op.inputs[1]:
            sizes = self.int_list(op, 1, "split sizes")
        elif "split" in op.attrs:
            sizes = [int(v) for v in op.attrs["split"]]
        else:
            n = len(op.outputs)
            sizes = [shape[1] // n + (k < shape[1] % n) for k in range(n)] if "num_outputs" not in op.attrs else \
                [-(-shape[1] // n)] * (n - 1) + [shape[1] - -(-shape[1] // n) * (n - 1)]
        if len(sizes) != len(op.outputs) or sum(sizes) != shape[1] or min(sizes) < 0:
            raise self.fail(op, f"a split of {shape[1]} channels into {sizes}")
        layers, start = [], 0
        for size, out in zip(sizes, op.outputs, strict=True):
            share = self.layer(op, SPLIT, [str(start), str(start + size)], [x])
            share.output = out
            layers.append(share)
            start += size
        return layers

    def op_SequenceAt(self, op: Op):
        """One share of a SplitToSequence of the channels (torch's chunk as the dynamo exporter
        writes it without optimising)."""
        split = self.producer.get(op.inputs[0]) if op.inputs else None
        if split is None or split.op != "SplitToSequence":
            raise self.fail(op, "a sequence that is not a split of the channels", NEAREST_SLICE)
        x = self.data(split)
        shape = self.s.shape(x)
        axis = int(split.attrs.get("axis", 0))
        if shape is None or len(shape) != 4 or axis % 4 != 1 or not isinstance(shape[1], int) \
                or not int(split.attrs.get("keepdims", 1)):
            raise self.fail(op, "a split along another axis than the channels", NEAREST_SLICE)
        c = shape[1]
        if len(split.inputs) > 1 and split.inputs[1]:
            given = self.int_list(split, 1, "split sizes")
            sizes = given if len(given) > 1 else [given[0]] * (c // given[0]) + ([c % given[0]] if c % given[0] else [])
        else:
            sizes = [1] * c
        k = int(self.int_list(op, 1, "position")[0])
        k = k + len(sizes) if k < 0 else k
        if not 0 <= k < len(sizes) or sum(sizes) != c:
            raise self.fail(op, f"share {k} of a split of {c} channels into {sizes}")
        start = sum(sizes[:k])
        return [self.layer(op, SPLIT, [str(start), str(start + sizes[k])], [x])]

    def shuffle(self, op: Op, x: str):
        """``shuffle G``: a Reshape back to NxCxHxW of a Transpose (0, 2, 1, 3, 4) of a Reshape of
        the NxCxHxW tensor to NxGxC/GxHxW, each read only by the next; None for another reshape."""
        swap, reader, copies = self.producer.get(x), op, []
        while swap is not None and swap.op == "Identity" and self.only_use(swap.outputs[0], reader):  # .contiguous()
            copies.append(swap.index)
            reader, x = swap, swap.inputs[0]
            swap = self.producer.get(x)
        if swap is None or swap.op != "Transpose" or [int(p) for p in swap.attrs.get("perm", [])] != [0, 2, 1, 3, 4] \
                or not self.only_use(x, reader):
            return None
        split = self.producer.get(swap.inputs[0])
        if split is None or split.op != "Reshape" or not self.only_use(swap.inputs[0], swap):
            return None
        src, mid, dst = self.s.shape(split.inputs[0]), self.s.shape(split.outputs[0]), self.s.shape(op.outputs[0])
        if src is None or mid is None or dst is None or len(src) != 4 or len(mid) != 5 \
                or tuple(dst[1:]) != tuple(src[1:]) or tuple(mid[3:]) != tuple(src[2:]) \
                or not all(isinstance(d, int) for d in mid[1:]) or mid[1] * mid[2] != src[1]:
            return None
        self.absorbed.update((swap.index, split.index, *copies))
        return [self.layer(op, "shuffle", [str(mid[1])], [self.data(split)])]


NEAREST_SLICE = "cnndsl crops the centre of each map with `crop`, and splits the channels into equal shares " \
                "with `concat split`"


def _bounds(start: int, end: int, dim: int) -> tuple[int, int]:
    """A slice's [start, end) on an axis of ``dim``, as ONNX clamps it."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    return max(0, min(start, dim)), max(0, min(end, dim))


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)
