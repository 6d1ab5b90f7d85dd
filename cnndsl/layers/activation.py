"""Activations and softmax: element-wise, no parameters, shape unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.layers.base import Layer, arg, number, one_of, register


class Activation(Layer):
    """Base: shape in = shape out; ONNX op named by ``op``."""

    op = "?"
    category = "activation"
    fusable = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "onnx_ops" not in cls.__dict__ and cls.op != "?":
            cls.onnx_ops = cls.op

    def infer(self, shapes):
        return shapes[0]

    def attrs(self) -> dict:
        """The ONNX node's attributes."""
        return {}

    def emit(self, b, node, xs):
        return b.node(self.op, xs, node.name, **self.attrs())


def _elementwise(names: tuple[str, ...], op: str, doc: str, *, relu_like: bool = False,
                 attrs: dict | None = None, param: tuple[str, float, str] | None = None) -> type[Activation]:
    """One activation that is a single ONNX operator: a row of the table below. ``attrs`` are its
    fixed ONNX attributes; ``param`` (field, default, ONNX attribute) is one optional number it takes."""
    fixed = dict(attrs or {})
    space = {"__doc__": doc, "__module__": __name__, "__qualname__": op, "op": op, "relu_like": relu_like,
             "attrs": lambda self: dict(fixed)}
    if param is not None:
        field, default, attribute = param
        space.update({"__annotations__": {field: "float"}, field: arg(number, default, pos=True),
                      "attrs": lambda self: {**fixed, attribute: getattr(self, field)}})
    cls = type(op, (Activation,), space)
    # A kind with no arguments needs no dataclass of its own: Layer's generated methods serve, and
    # making one costs every command most of a millisecond.
    return register(*names)(dataclass(frozen=True)(cls) if param is not None else cls)


# names, ONNX operator, syntax line (the README's row), He initialisation before it, attributes.
Relu = _elementwise(("relu",), "Relu", "relu", relu_like=True)
Tanh = _elementwise(("tanh",), "Tanh", "tanh")
Sigmoid = _elementwise(("sigmoid",), "Sigmoid", "sigmoid")
HardSwish = _elementwise(("hardswish", "hard_swish"), "HardSwish",
                         "hardswish: x * relu6(x + 3) / 6 (MobileNetV3)", relu_like=True)
# PyTorch's hardsigmoid is relu6(x + 3) / 6, i.e. ONNX HardSigmoid with alpha 1/6 (ONNX's default is 0.2).
HardSigmoid = _elementwise(("hardsigmoid", "hard_sigmoid"), "HardSigmoid",
                           "hardsigmoid: relu6(x + 3) / 6, PyTorch's (the gate of MobileNetV3's squeeze-excite)",
                           attrs={"alpha": 1.0 / 6.0, "beta": 0.5})


@register("relu6")
class Relu6(Activation):
    """relu6: min(max(x, 0), 6)"""

    relu_like = True
    onnx_ops = "Clip(0, 6)"

    def emit(self, b, node, xs):
        lo = b.scalar(node.name + ".min", 0.0)
        hi = b.scalar(node.name + ".max", 6.0)
        return b.node("Clip", [xs[0], lo, hi], node.name)


LeakyRelu = _elementwise(("leakyrelu", "leaky_relu"), "LeakyRelu",
                         "leakyrelu [SLOPE]: x if x > 0 else SLOPE*x (SLOPE 0.01 by default)", relu_like=True,
                         param=("slope", 0.01, "alpha"))
Elu = _elementwise(("elu",), "Elu", "elu [ALPHA]: x if x > 0 else ALPHA*(exp(x)-1) (ALPHA 1.0 by default)",
                   relu_like=True, param=("alpha", 1.0, "alpha"))


@register("gelu")
@dataclass(frozen=True)
class Gelu(Activation):
    """gelu [approximate=none|tanh]: the Gaussian error linear unit (opset 20 or later)"""

    relu_like = True
    onnx_ops = "Gelu (opset 20 or later)"

    approximate: str = arg(one_of("none", "tanh"), "none")

    op = "Gelu"

    def attrs(self):
        return {"approximate": self.approximate}

    def emit(self, b, node, xs):
        b.need_opset(20, "gelu")
        return super().emit(b, node, xs)


@register("silu", "swish")
class Silu(Activation):
    """silu: x * sigmoid(x), also called swish (PyTorch's SiLU; EfficientNet's activation)"""

    relu_like = True
    onnx_ops = "Sigmoid and Mul"

    def emit(self, b, node, xs):
        gate = b.node("Sigmoid", xs, node.name + ".sigmoid")
        return b.node("Mul", [xs[0], gate], node.name)


@register("identity")
class Identity(Activation):
    """identity: passes its input through (emits no ONNX node)"""

    onnx_ops = "nothing"

    def emit(self, b, node, xs):
        return xs[0]


@register("softmax")
@dataclass(frozen=True)
class Softmax(Activation):
    """softmax [axis=1]: normalise to probabilities along the channel/feature axis"""

    category = "output"
    onnx_ops = "Softmax"

    axis: int = arg(lambda v, f: v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else
                    _bad_axis(v), 1)

    def infer(self, shapes):
        from cnndsl.errors import RuleError

        if self.axis > len(shapes[0]):
            raise RuleError(f"softmax axis={self.axis} but the input has only {len(shapes[0])} "
                            "axes after the batch", field="axis")
        return shapes[0]

    def emit(self, b, node, xs):
        return b.node("Softmax", xs, node.name, axis=self.axis)


def _bad_axis(v):
    from cnndsl.errors import RuleError
    from cnndsl.lang.show import show

    raise RuleError(f"axis must be an integer >= 1 (axis 0 is the batch), not {show(v)}", field="axis")

