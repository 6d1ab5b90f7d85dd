"""From ONNX ops to cnndsl layers: each node (or small pattern of nodes) the language expresses
becomes one Layer with its statement's arguments and the initializers that fill its weights.

Patterns: Conv/MaxPool/AveragePool after a zero Pad take the padding; MatMul (+ Add of a
constant) and Gemm are dense; x * Sigmoid(x) is silu; Clip(0, 6) is relu6; Identity, Dropout and
a Flatten of a flat tensor pass their input on; a Reshape to N x features is flatten. Anything
else is an ImportModelError naming the node and the nearest construct cnndsl has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cnndsl.errors import ImportModelError
from cnndsl.importer.channels import NHWC_OPS, ChannelOps, layouts
from cnndsl.importer.load import Op, Source
from cnndsl.importer.patterns import ArithmeticOps
from cnndsl.importer.values import dims_text as _dims
from cnndsl.importer.values import float_text as _float
from cnndsl.importer.values import text_of as _text
from cnndsl.lang.show import printable

ANONYMOUS = re.compile(r"(val|_val)_\d+\Z")  # the dynamo exporter's names for the tensors it computes ahead
JOIN_OPS = {"Concat": "concat", "Add": "add", "Mul": "mul"}
SIMPLE = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "HardSwish": "hardswish"}
NEAREST = {  # ops the language has a construct near to, for the error's hint
    "Sub": "cnndsl joins branches with concat, add and mul only",
    "Div": "cnndsl joins branches with concat, add and mul only",
    "MatMul": "dense takes a flat input and a constant weight matrix",
    "Gemm": "dense takes a flat input and a constant weight matrix",
    "Pad": "conv and pools take `pad=`; a Pad cnndsl can merge is zeros on height and width before one",
    "ReduceMean": "`globalavgpool` averages over height and width",
    "ReduceMax": "`globalmaxpool` takes the maximum over height and width",
    "InstanceNormalization": "cnndsl has batchnorm and layernorm",
    "GroupNormalization": "cnndsl has batchnorm and layernorm",
    "PRelu": "cnndsl has leakyrelu with a fixed slope",
    "Softplus": "cnndsl's activations: relu, relu6, leakyrelu, elu, gelu, silu, tanh, sigmoid, hardswish, hardsigmoid",
}


@dataclass
class Weight:
    """An initializer that fills one of a layer's weights (``role``: weight, bias, ...)."""

    source: str  # the initializer's name
    shape: tuple[int, ...]  # the shape cnndsl gives it
    transform: Callable[[np.ndarray], np.ndarray] | None = None  # e.g. a transpose, a reshape


@dataclass
class Layer:
    """One statement-to-be: a layer kind with its arguments, or a join (concat, add, mul)."""

    kind: str
    args: list[str]
    inputs: list[str]
    output: str
    op: Op
    weights: dict[str, Weight] = field(default_factory=dict)
    nhwc: bool = False  # whether the model holds the output channels-last (between ConvNeXt's transposes)
    referenced: bool = False  # a `from` goes on from its output (so no activation is written on its line)
    shared: bool = False  # a weight of it fills another layer's too (an exporter stored equal tensors once)

    @property
    def is_join(self) -> bool:
        return self.kind in ("concat", "add", "mul")

    def path(self) -> str | None:
        """The module name the weights share (``layer1.0.conv1`` for ``layer1.0.conv1.weight``),
        or None where they share none (meaningless names like ``onnx::Conv_123``). A weight an
        exporter computed and named anew (``val_5``, a Linear's weight transposed ahead) goes by its
        layer's other weights' module name."""
        if self.shared:  # the name is some other module's
            return None
        paths = set()
        for role, w in self.weights.items():
            name = w.source
            if role == "bias" and name.endswith(".weight_bias"):  # a batchnorm folded into this conv
                name = name[: -len("weight_bias")] + "bias"
            if not role:  # a weight named as its layer (layerscale)
                paths.add(name)
            elif name.endswith("." + role) and ":" not in name:
                paths.add(name[: -len(role) - 1])
            elif "." in name or ":" in name or not ANONYMOUS.match(name):
                return None
        return paths.pop() if len(paths) == 1 else None

    def text(self) -> str:
        return " ".join([self.kind, *self.args])


def lift(source: Source) -> tuple[list[Layer], str]:
    """The model's layers in topological order, and the tensor that is the network's output
    (after the identities)."""
    return _Lifter(source).run()


class _Lifter(ChannelOps, ArithmeticOps):
    def __init__(self, source: Source) -> None:
        self.s = source
        self.nhwc = layouts(source.ops, source.input)
        self.producer: dict[str, Op] = {o: op for op in source.ops for o in op.outputs if o}
        self.consumers: dict[str, list[Op]] = {}
        for op in source.ops:
            for i in op.inputs:
                self.consumers.setdefault(i, []).append(op)
        self.alias: dict[str, str] = {}
        self.absorbed: set[int] = set()
        self.passes: dict[int, str] = {}  # an op that passes a tensor on -> that tensor (else its first input)

    def fail(self, op: Op, message: str, hint: str | None = None) -> ImportModelError:
        exc = ImportModelError(f"{op.where()}: {message}", path=self.s.path, hint=hint)
        exc.stop = next((i for i in op.inputs if i and not self.s.is_constant(i)), None)  # for --partial
        return exc

    def run(self) -> tuple[list[Layer], str]:
        if len(self.s.outputs) != 1:
            raise ImportModelError(f"the model has {len(self.s.outputs)} outputs "
                                   f"({', '.join(printable(o) for o in self.s.outputs)}); import reads one so far",
                                   path=self.s.path, hint="export the model with its main output only")
        needed = {self.s.outputs[0]}
        layers: list[Layer] = []
        for op in reversed(self.s.ops):
            if op.index in self.absorbed or not any(o in needed for o in op.outputs):
                continue
            if op.op == "Constant" or (all(self.s.is_constant(i) for i in op.inputs if i) and op.inputs):
                raise self.fail(op, "the network's output depends on this constant computation, not on its input")
            made = self.lift(op)
            if made is None:  # an alias: passes its first input on
                passed = self.passes.get(op.index, op.inputs[0])
                self.alias[op.outputs[0]] = passed
                needed.add(passed)
                continue
            for layer in made:
                layers.append(layer)
                needed.update(layer.inputs)
        layers.reverse()
        users: dict[str, int] = {}
        for layer in layers:
            for w in layer.weights.values():
                users[w.source] = users.get(w.source, 0) + 1
        for layer in layers:
            layer.shared = any(users[w.source] > 1 for w in layer.weights.values())
        for layer in layers:
            layer.inputs = [self.resolve(i) for i in layer.inputs]
        out = self.resolve(self.s.outputs[0])
        if out == self.s.input:
            raise ImportModelError("the model's output is its input: there is no network to import", path=self.s.path)
        return layers, out

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    # ----- helpers

    def const(self, op: Op, index: int, what: str) -> str:
        name = op.inputs[index] if index < len(op.inputs) else ""
        if not name:
            raise self.fail(op, f"it has no {what}")
        if not self.s.is_constant(name):
            raise self.fail(op, f"its {what} is computed while the model runs; cnndsl layers have constant weights")
        return name

    def data(self, op: Op, index: int = 0) -> str:
        name = op.inputs[index] if index < len(op.inputs) else ""
        if not name or self.s.is_constant(name):
            raise self.fail(op, "its input is a constant where cnndsl expects the tensor the network computes")
        return name

    def only_use(self, name: str, op: Op) -> bool:
        return [c.index for c in self.consumers.get(name, [])] == [op.index] and name not in self.s.outputs

    def computed_zeros(self, name: str) -> bool:
        """Whether a constant is zeros the model computes (an exporter's stand-in for no bias)
        rather than a stored weight."""
        name = self.s.aliases.get(name, name)
        return name in self.s.folded and not np.any(self.s.constants[name])

    def weight(self, name: str, shape=None, transform=None) -> Weight:
        stored = self.s.shape(name)
        return Weight(name, tuple(shape if shape is not None else stored), transform)

    def ints(self, op: Op, key: str, default):
        return [int(v) for v in op.attrs.get(key, default)]

    def rank(self, name: str) -> int | None:
        shape = self.s.shape(name)
        return len(shape) if shape is not None else None

    def floats_close(self, value, want: float) -> bool:
        return bool(np.float32(value) == np.float32(want))

    # ----- the ops

    def lift(self, op: Op) -> list[Layer] | None:
        kind = op.op
        if kind in ("Identity", "Dropout"):
            if kind == "Dropout" and len(op.outputs) > 1 and op.outputs[1] and self.consumers.get(op.outputs[1]):
                raise self.fail(op, "its mask output is used", "an inference graph has no dropout mask")
            return None
        if kind not in NHWC_OPS and any(self.channels_last(i) for i in op.inputs if i):
            raise self.fail(op, f"a {kind} of a channels-last tensor",
                            "cnndsl works channels-last only between the transposes around `layernorm` and "
                            "`linear` (ConvNeXt)")
        handler = getattr(self, "op_" + kind, None)
        if handler is not None:
            return handler(op)
        if kind in SIMPLE:
            return [self.layer(op, SIMPLE[kind])]
        raise self.fail(op, f"no cnndsl statement computes {kind}",
                        NEAREST.get(kind, "see the layer table in the README for what the language has"))

    def layer(self, op: Op, kind: str, args=(), inputs=None, weights=None) -> Layer:
        return Layer(kind, list(args), list(inputs if inputs is not None else [self.data(op)]), op.outputs[0], op,
                     dict(weights or {}), op.outputs[0] in self.nhwc)

    def window(self, op: Op, x: str) -> tuple[list[int], list[int], list[int], list[int], bool, str]:
        """kernel, strides, pads (t, l, b, r), dilations, whether pad=same, and the data input after
        merging a zero Pad before the op."""
        kernel = self.ints(op, "kernel_shape", [])
        if len(kernel) != 2 and op.op not in ("Conv",):
            raise self.fail(op, f"a {len(kernel)}-D window; cnndsl layers have 2-D windows")
        strides = self.ints(op, "strides", [1, 1])
        dilations = self.ints(op, "dilations", [1, 1])
        auto = op.attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        pads = self.ints(op, "pads", [0, 0, 0, 0])
        if auto == "SAME_LOWER":
            raise self.fail(op, "auto_pad SAME_LOWER puts the odd padding first; cnndsl's pad=same puts it last",
                            "write the padding explicitly when exporting")
        same = auto == "SAME_UPPER"
        if auto == "VALID":
            pads = [0, 0, 0, 0]
        if len(pads) != 4:
            raise self.fail(op, "its padding is not 2-D")
        pads = [pads[0], pads[1], pads[2], pads[3]]
        merged = self.merge_pad(op, x)
        if merged is not None and not same:
            extra, x = merged
            pads = [a + b for a, b in zip(pads, extra, strict=True)]
        return kernel, strides, pads, dilations, same, x

    def merge_pad(self, op: Op, x: str) -> tuple[list[int], str] | None:
        """A zero Pad of height and width alone, read only by ``op``: its (t, l, b, r) and its input."""
        pad = self.producer.get(x)
        if pad is None or pad.op != "Pad" or not self.only_use(x, op):
            return None
        mode = pad.attrs.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            return None
        if len(pad.inputs) > 1 and pad.inputs[1]:
            if not self.s.is_constant(pad.inputs[1]):
                return None
            amounts = [int(v) for v in self.s.value(pad.inputs[1]).reshape(-1)]
        else:
            amounts = [int(v) for v in pad.attrs.get("pads", [])]
        if len(pad.inputs) > 2 and pad.inputs[2]:
            if not self.s.is_constant(pad.inputs[2]) or np.any(self.s.value(pad.inputs[2]) != 0):
                return None
        elif pad.attrs.get("value", 0.0) != 0.0:
            return None
        if len(pad.inputs) > 3 and pad.inputs[3]:  # axes
            return None
        if len(amounts) != 8 or any(amounts[i] for i in (0, 1, 4, 5)) or min(amounts) < 0:
            return None
        self.absorbed.add(pad.index)
        return [amounts[2], amounts[3], amounts[6], amounts[7]], self.data(pad)

    @staticmethod
    def size(v: list[int]) -> str:
        return f"{v[0]}x{v[1]}"

    @staticmethod
    def pair(v: list[int]) -> str:
        return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"

    @staticmethod
    def pad_text(p: list[int]) -> str:
        t, l_, b, r = p
        if t == l_ == b == r:
            return str(t)
        if t == b and l_ == r:
            return f"{t}x{l_}"
        return f"({t}, {l_}, {b}, {r})"

    def op_Conv(self, op: Op) -> list[Layer]:
        w = op.inputs[1] if len(op.inputs) > 1 else ""
        kernel = self.linear_kernel(op, w)
        if kernel is not None and not any(self.ints(op, "pads", [0])) and int(op.attrs.get("group", 1)) == 1 \
                and self.ints(op, "strides", [1, 1]) == [1, 1]:
            return [self.linear(op, self.data(op), kernel, self.s.shape(kernel), None)]
        w = self.const(op, 1, "weight")
        shape = self.s.shape(w)
        if shape is None or len(shape) != 4:
            raise self.fail(op, f"a {len(shape or ()) - 2}-D convolution; cnndsl convolutions are 2-D")
        kernel, strides, pads, dilations, same, x = self.window(op, self.data(op))
        kernel = kernel or list(shape[2:])
        groups = int(op.attrs.get("group", 1))
        args = [str(shape[0]), self.size(kernel)]
        if strides != [1, 1]:
            args.append(f"stride={self.pair(strides)}")
        if same:
            args.append("pad=same")
        elif any(pads):
            args.append(f"pad={self.pad_text(pads)}")
        return [self.layer(op, "conv", args, [x], self.filters(op, w, args, dilations, groups))]

    def filters(self, op: Op, w: str, args: list[str], dilations: list[int], groups: int) -> dict[str, Weight]:
        """A conv's or transposed conv's last options (dilation, groups, bias=false) added to
        ``args``, and its weights: the bias unless there is none or it is zeros the model computes."""
        if dilations != [1, 1]:
            args.append(f"dilation={self.pair(dilations)}")
        if groups != 1:
            args.append(f"groups={groups}")
        weights = {"weight": self.weight(w)}
        if len(op.inputs) > 2 and op.inputs[2] and not self.computed_zeros(self.const(op, 2, "bias")):
            weights["bias"] = self.weight(self.const(op, 2, "bias"))
        else:
            args.append("bias=false")
        return weights

    def op_ConvTranspose(self, op: Op) -> list[Layer]:
        w = self.const(op, 1, "weight")
        shape = self.s.shape(w)
        if shape is None or len(shape) != 4:
            raise self.fail(op, "a transposed convolution that is not 2-D")
        if "output_shape" in op.attrs or op.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(op, "output_shape or auto_pad on a transposed convolution",
                            "export with explicit pads and output_padding")
        kernel = self.ints(op, "kernel_shape", list(shape[2:]))
        strides, dilations = self.ints(op, "strides", [1, 1]), self.ints(op, "dilations", [1, 1])
        pads, extra = self.ints(op, "pads", [0, 0, 0, 0]), self.ints(op, "output_padding", [0, 0])
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.fail(op, f"a transposed convolution padded unevenly ({pads})",
                            "cnndsl's convtranspose pads both sides of an axis alike, as PyTorch's")
        groups = int(op.attrs.get("group", 1))
        args = [str(shape[1] * groups), self.size(kernel)]
        if strides != [1, 1]:
            args.append(f"stride={self.pair(strides)}")
        if any(pads):
            args.append(f"pad={self.pair(pads[:2])}")
        if any(extra):
            args.append(f"output_pad={self.pair(extra)}")
        weights = self.filters(op, w, args, dilations, groups)
        return [self.layer(op, "convtranspose", args, [self.data(op)], weights)]

    def op_Resize(self, op: Op) -> list[Layer]:
        x = self.data(op)
        mode = _text(op.attrs.get("mode", "nearest"))
        coords = _text(op.attrs.get("coordinate_transformation_mode",
                                    "asymmetric" if self.s.opset < 11 else "half_pixel"))
        nearest = _text(op.attrs.get("nearest_mode", "round_prefer_floor" if self.s.opset >= 11 else "floor"))
        if mode == "nearest" and coords == "asymmetric" and (nearest == "floor" or self.s.opset < 11):
            words = []
        elif mode == "linear" and coords in ("half_pixel", "pytorch_half_pixel"):
            words = ["bilinear"]
        elif mode == "linear" and coords == "align_corners":
            words = ["bilinear", "align_corners=true"]
        else:
            raise self.fail(op, f"a {mode} resize with {coords} coordinates"
                            + (f" rounding {nearest}" if mode == "nearest" else ""),
                            "cnndsl's upsample is PyTorch's interpolate: nearest (asymmetric, floor) or bilinear "
                            "(half-pixel or align_corners)")
        if self.s.opset < 11:  # Resize-10: X, scales
            scales, sizes = (op.inputs[1] if len(op.inputs) > 1 else ""), ""
        else:
            scales = op.inputs[2] if len(op.inputs) > 2 else ""
            sizes = op.inputs[3] if len(op.inputs) > 3 else ""
        return [self.layer(op, "upsample", self.resize_target(op, x, scales, sizes) + words, [x])]

    def op_Upsample(self, op: Op) -> list[Layer]:
        x = self.data(op)
        if _text(op.attrs.get("mode", "nearest")) != "nearest":
            raise self.fail(op, "a linear Upsample (asymmetric coordinates)",
                            "cnndsl's bilinear upsample is PyTorch's (half-pixel); export at opset 11 or later")
        if len(op.inputs) > 1 and op.inputs[1]:
            target = self.resize_target(op, x, op.inputs[1], "")
        else:
            target = self.scale_args(op, [float(v) for v in op.attrs.get("scales", [])])
        return [self.layer(op, "upsample", target, [x])]

    def resize_target(self, op: Op, x: str, scales: str, sizes: str) -> list[str]:
        if sizes and self.s.is_constant(sizes):
            size = [int(v) for v in self.s.value(sizes).reshape(-1)]
            axes = [int(a) % 4 for a in op.attrs.get("axes", range(4 - len(size), 4))]
            if sorted(axes) != [2, 3] and not (len(size) == 4 and size[:2] == list(self.s.shape(x)[:2])):
                raise self.fail(op, "a resize of other axes than height and width")
            return [f"size={size[-2]}x{size[-1]}"]
        if scales and self.s.is_constant(scales) and self.s.value(scales).size:
            return self.scale_args(op, [float(v) for v in self.s.value(scales).reshape(-1)])
        out = self.s.shape(op.outputs[0])
        if out is not None and len(out) == 4 and all(isinstance(d, int) for d in out[2:]):
            return [f"size={out[2]}x{out[3]}"]
        raise self.fail(op, "a resize to a size computed while the model runs",
                        "export with a fixed image size: cnndsl's upsample has a fixed size or scale")

    def scale_args(self, op: Op, scales: list[float]) -> list[str]:
        if len(scales) == 4 and scales[:2] == [1.0, 1.0]:
            scales = scales[2:]
        if len(scales) != 2:
            raise self.fail(op, f"a resize by scales {scales}", "cnndsl's upsample scales height and width")
        if scales[0] == scales[1]:
            return [_float(scales[0])]
        return [f"({_float(scales[0])}, {_float(scales[1])})"]

    def pool(self, op: Op, kind: str) -> list[Layer]:
        kernel, strides, pads, dilations, same, x = self.window(op, self.data(op))
        if dilations != [1, 1]:
            raise self.fail(op, "a dilated pool; cnndsl pools have no dilation")
        if len(op.outputs) > 1 and op.outputs[1] and self.consumers.get(op.outputs[1]):
            raise self.fail(op, "its indices output is used", "cnndsl's maxpool gives the maxima only")
        args = [self.size(kernel)]
        if strides != kernel:
            args.append(f"stride={self.pair(strides)}")
        if same:
            args.append("pad=same")
        elif any(pads):
            args.append(f"pad={self.pad_text(pads)}")
        if int(op.attrs.get("ceil_mode", 0)):
            args.append("ceil")
        if kind == "avgpool" and (any(pads) or same) and not int(op.attrs.get("count_include_pad", 0)):
            args.append("count_pad=false")
        return [self.layer(op, kind, args, [x])]

    def op_MaxPool(self, op: Op) -> list[Layer]:
        return self.pool(op, "maxpool")

    def op_AveragePool(self, op: Op) -> list[Layer]:
        return self.pool(op, "avgpool")

    def op_GlobalAveragePool(self, op: Op) -> list[Layer]:
        return [self.layer(op, "globalavgpool")]

    def op_GlobalMaxPool(self, op: Op) -> list[Layer]:
        return [self.layer(op, "globalmaxpool")]

    def op_ReduceMean(self, op: Op) -> list[Layer]:
        return self.reduce(op, "globalavgpool")

    def op_ReduceMax(self, op: Op) -> list[Layer]:
        return self.reduce(op, "globalmaxpool")

    def reduce(self, op: Op, kind: str) -> list[Layer]:
        x = self.data(op)
        if len(op.inputs) > 1 and op.inputs[1]:
            axes = [int(a) for a in self.s.value(self.const(op, 1, "axes")).reshape(-1)]
        else:
            axes = self.ints(op, "axes", [])
        rank = self.rank(x)
        if rank != 4 or sorted(a % 4 for a in axes) != [2, 3]:
            raise self.fail(op, "a reduction over other axes than height and width", NEAREST[op.op])
        if int(op.attrs.get("keepdims", 1)):
            return [self.layer(op, kind, inputs=[x])]
        pooled = op.outputs[0] + "::pooled"
        return [Layer(kind, [], [x], pooled, op), Layer("flatten", [], [pooled], op.outputs[0], op)]

    def op_BatchNormalization(self, op: Op) -> list[Layer]:
        if int(op.attrs.get("training_mode", 0)) or (len(op.outputs) > 1 and any(op.outputs[1:])):
            raise self.fail(op, "a batchnorm in training mode", "export the model in eval mode")
        names = [self.const(op, i, what) for i, what in
                 ((1, "scale"), (2, "shift"), (3, "running mean"), (4, "running variance"))]
        eps = float(op.attrs.get("epsilon", 1e-5))
        args = [] if self.floats_close(eps, 1e-5) else [f"eps={_float(eps)}"]
        roles = ("weight", "bias", "running_mean", "running_var")
        return [self.layer(op, "batchnorm", args, weights={r: self.weight(n) for r, n in zip(roles, names,
                                                                                         strict=True)})]

    def op_LRN(self, op: Op) -> list[Layer]:
        args = [str(int(op.attrs["size"]))]
        for key, name, default in (("alpha", "alpha", 1e-4), ("beta", "beta", 0.75), ("bias", "k", 1.0)):
            value = float(op.attrs.get(key, default))
            if not self.floats_close(value, default):
                args.append(f"{name}={_float(value)}")
        return [self.layer(op, "lrn", args)]

    def op_Softmax(self, op: Op) -> list[Layer]:
        x = self.data(op)
        axis = int(op.attrs.get("axis", 1 if self.s.opset < 13 else -1))
        rank = self.rank(x)
        if rank is None or axis % rank != 1:
            raise self.fail(op, "a softmax along another axis than the channels or features")
        if self.s.opset < 13 and rank != 2:
            raise self.fail(op, "a softmax over the flattened channels, height and width (opset < 13)")
        return [self.layer(op, "softmax", inputs=[x])]

    def op_LeakyRelu(self, op: Op) -> list[Layer]:
        alpha = float(op.attrs.get("alpha", 0.01))
        return [self.layer(op, "leakyrelu", [] if self.floats_close(alpha, 0.01) else [_float(alpha)])]

    def op_Elu(self, op: Op) -> list[Layer]:
        alpha = float(op.attrs.get("alpha", 1.0))
        return [self.layer(op, "elu", [] if self.floats_close(alpha, 1.0) else [_float(alpha)])]

    def op_Gelu(self, op: Op) -> list[Layer]:
        approx = op.attrs.get("approximate", b"none")
        approx = approx.decode() if isinstance(approx, bytes) else approx
        return [self.layer(op, "gelu", [] if approx == "none" else [f"approximate={approx}"])]

    def op_HardSigmoid(self, op: Op) -> list[Layer]:
        alpha, beta = float(op.attrs.get("alpha", 0.2)), float(op.attrs.get("beta", 0.5))
        if not (self.floats_close(alpha, 1 / 6) and self.floats_close(beta, 0.5)):
            raise self.fail(op, f"HardSigmoid with alpha={_float(alpha)}, beta={_float(beta)}",
                            "cnndsl's hardsigmoid is PyTorch's: relu6(x + 3) / 6 (alpha 1/6, beta 0.5)")
        return [self.layer(op, "hardsigmoid")]

    def op_Clip(self, op: Op) -> list[Layer]:
        if self.s.opset >= 11:
            bounds = []
            for i in (1, 2):
                name = op.inputs[i] if i < len(op.inputs) else ""
                bounds.append(float(self.s.value(self.const(op, i, "bound")).reshape(-1)[0]) if name else None)
        else:
            bounds = [op.attrs.get("min"), op.attrs.get("max")]
        if bounds == [0.0, 6.0]:
            return [self.layer(op, "relu6")]
        if bounds[0] == 0.0 and bounds[1] is None:
            return [self.layer(op, "relu")]
        raise self.fail(op, f"a clip to [{bounds[0]}, {bounds[1]}]", "cnndsl clips only as relu6 (0 to 6)")

    def op_Flatten(self, op: Op) -> list[Layer] | None:
        x = self.data(op)
        rank = self.rank(x)
        if int(op.attrs.get("axis", 1)) != 1:
            raise self.fail(op, "a flatten that keeps other axes than the batch", "cnndsl's flatten gives N x features")
        if rank == 2:
            return None
        return [self.layer(op, "flatten", inputs=[x])]

    def op_Reshape(self, op: Op) -> list[Layer] | None:
        x = self.data(op)
        shuffled = self.shuffle(op, x)
        if shuffled is not None:
            return shuffled
        src, dst = self.s.shape(x), self.s.shape(op.outputs[0])
        if dst is None and self.s.is_constant(op.inputs[1]):
            dst = tuple(int(v) for v in self.s.value(op.inputs[1]).reshape(-1))
        if src is not None and dst is not None and len(dst) == 2 and all(isinstance(d, int) for d in src[1:]):
            features = int(np.prod(src[1:]))
            if dst[1] in (features, -1):
                return None if len(src) == 2 else [self.layer(op, "flatten", inputs=[x])]
        raise self.fail(op, f"a reshape from {_dims(src)} to {_dims(dst)}",
                        "cnndsl reshapes only as flatten (N x features); `shuffle` interleaves channels")

    def op_Squeeze(self, op: Op) -> list[Layer] | None:
        x = self.data(op)
        src, dst = self.s.shape(x), self.s.shape(op.outputs[0])
        if src is not None and len(src) == 4 and tuple(src[2:]) == (1, 1) and dst is not None and len(dst) == 2:
            return [self.layer(op, "flatten", inputs=[x])]
        raise self.fail(op, f"a squeeze from {_dims(src)} to {_dims(dst)}", "cnndsl's flatten gives N x features")

    def op_Gemm(self, op: Op) -> list[Layer]:
        x = self.data(op)
        if int(op.attrs.get("transA", 0)):
            raise self.fail(op, "Gemm with transA", NEAREST["Gemm"])
        for key in ("alpha", "beta"):
            if not self.floats_close(op.attrs.get(key, 1.0), 1.0):
                raise self.fail(op, f"Gemm with {key}={_float(op.attrs[key])}", "dense computes x W^T + b")
        w = self.const(op, 1, "weight")
        shape = self.s.shape(w)
        if len(shape) != 2:
            raise self.fail(op, "its weight is not a matrix")
        trans = int(op.attrs.get("transB", 0))
        units = shape[0] if trans else shape[1]
        weights = {"weight": self.weight(w, (units, shape[1] if trans else shape[0]),
                                         None if trans else np.transpose)}
        args = [str(units)]
        if len(op.inputs) > 2 and op.inputs[2]:
            b = self.const(op, 2, "bias")
            bshape = self.s.shape(b)
            if int(np.prod(bshape)) != units:
                raise self.fail(op, f"its bias has shape {_dims(bshape)}, not one value per unit",
                                "dense adds one bias per unit")
            weights["bias"] = self.weight(b, (units,), lambda a: a.reshape(-1))
        else:
            args.append("bias=false")
        return [self.layer(op, "dense", args, [x], weights)]

    def op_MatMul(self, op: Op) -> list[Layer]:
        x = self.data(op)
        turned = self.turned(op.inputs[1] if len(op.inputs) > 1 else "")
        if turned is not None:  # stored units x C, as the spec holds it
            w, transform = turned, None
            shape = self.s.shape(w)[::-1]
        else:
            w, transform = self.const(op, 1, "weight"), np.transpose
            shape = self.s.shape(w)
        if len(shape) == 2 and self.rank(x) == 4 and self.channels_last(x):  # a Linear on each pixel
            return [self.linear(op, x, w, (shape[1], shape[0]), transform)]
        if len(shape) != 2 or self.rank(x) not in (2, None):
            raise self.fail(op, "a matrix product that is not a dense layer on a flat input", NEAREST["MatMul"])
        weights = {"weight": self.weight(w, (shape[1], shape[0]), transform)}
        return [self.layer(op, "dense", [str(shape[1]), "bias=false"], [x], weights)]

    def turned(self, w: str) -> str | None:
        """The stored matrix behind a weight the exporter transposes while the model runs
        (torch.onnx without constant folding), or None."""
        op = self.producer.get(w)
        if op is not None and op.op == "Transpose" and op.inputs and op.inputs[0] in self.s.initializers \
                and len(self.s.shape(op.inputs[0])) == 2 and [int(p) for p in op.attrs.get("perm", [1, 0])] == [1, 0]:
            return op.inputs[0]
        return None

    def linear(self, op: Op, x: str, w: str, shape, transform) -> Layer:
        """`linear UNITS`: a units x C matrix applied to the channels of each pixel."""
        weights = {"weight": self.weight(w, tuple(shape), transform)}
        if op.op == "Conv" and len(op.inputs) > 2 and op.inputs[2]:
            weights["bias"] = self.weight(self.const(op, 2, "bias"))
            return self.layer(op, "linear", [str(shape[0])], [x], weights)
        return self.layer(op, "linear", [str(shape[0]), "bias=false"], [x], weights)

    def op_Add(self, op: Op) -> list[Layer]:
        a, b = op.inputs[0], op.inputs[1]
        if self.s.is_constant(a):
            a, b = b, a
        if not self.s.is_constant(b):
            return [self.layer(op, "add", inputs=[self.data(op, 0), self.data(op, 1)])]
        mm = self.producer.get(a)
        if mm is not None and mm.op == "MatMul" and self.only_use(a, op) and (
                self.s.is_constant(mm.inputs[1]) or self.turned(mm.inputs[1]) is not None):
            [dense] = self.op_MatMul(mm)
            units = int(dense.args[0])
            if int(np.prod(self.s.shape(b))) == units and self.s.shape(b)[-1] == units:
                self.absorbed.add(mm.index)
                dense.args.remove("bias=false")
                dense.weights["bias"] = self.weight(b, (units,), lambda v: v.reshape(-1))
                dense.output = op.outputs[0]
                dense.op = op
                return [dense]
        raise self.fail(op, "an add of a constant", "a bias belongs to a conv or dense layer")

    def op_Mul(self, op: Op) -> list[Layer]:
        a, b = op.inputs[0], op.inputs[1]
        x = self.decomposed_gelu(op)
        if x is not None:
            return [self.layer(op, "gelu", [], [x])]
        if self.s.is_constant(a):
            a, b = b, a
        if self.s.is_constant(b):
            return [self.layer_scale(op, a, b)]
        for x, s in ((a, b), (b, a)):
            sig = self.producer.get(s)
            if sig is not None and sig.op == "Sigmoid" and sig.inputs[0] == x and self.only_use(s, op):
                self.absorbed.add(sig.index)
                return [self.layer(op, "silu", inputs=[self.data(sig)])]
        return [self.layer(op, "mul", inputs=[self.data(op, 0), self.data(op, 1)])]

    def layer_scale(self, op: Op, x: str, w: str) -> Layer:
        """`layerscale`: one learned factor per channel (C, 1 x C x 1 x 1, or C x 1 x 1; or C on
        a channels-last or flat tensor)."""
        shape, wshape = self.s.shape(x), self.s.shape(w)
        c = shape[-1] if shape is not None and (len(shape) == 2 or self.channels_last(x)) else \
            shape[1] if shape is not None and len(shape) == 4 else None
        n = int(np.prod(wshape)) if wshape is not None else 0
        trailing = [d for d in (wshape or ())]
        while trailing and trailing[0] == 1 and len(trailing) > 1:
            trailing.pop(0)
        want = [(c,)] if shape is None or len(shape) == 2 or self.channels_last(x) else [(c, 1, 1)]
        if c is None or n != c or tuple(trailing) not in want or self.computed_zeros(w):
            raise self.fail(op, f"a multiplication by a constant of shape {_dims(wshape)}",
                            "`layerscale` multiplies each channel by a learned weight (C values)")
        spec_shape = (c,) if len(shape) == 2 else (c, 1, 1)
        return self.layer(op, "layerscale", [], [x], {"": self.weight(w, spec_shape, lambda a: a.reshape(spec_shape))})

    def op_Concat(self, op: Op) -> list[Layer] | None:
        inputs = [self.data(op, i) for i in range(len(op.inputs))]
        if len(inputs) == 1:  # torch.cat of one tensor (DenseNet's first layer): that tensor
            return None
        rank = self.rank(inputs[0])
        if rank is None or int(op.attrs.get("axis", 1)) % rank != 1:
            raise self.fail(op, "a concat along another axis than the channels",
                            "concat { } joins branches along the channels")
        return [self.layer(op, "concat", inputs=inputs)]
