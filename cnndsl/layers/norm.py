"""Normalisation: batchnorm and local response normalisation (LRN)."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.layers.base import Layer, arg, positive_int, positive_number, register
from cnndsl.model.ir import BUFFER, TRAINABLE, Param


@register("batchnorm")
@dataclass(frozen=True)
class BatchNorm(Layer):
    """batchnorm [eps=1e-5]: per-channel scale and shift with running statistics (inference mode)

    Owns .weight and .bias (trained) and .running_mean and .running_var (buffers).
    """

    eps: float = arg(positive_number, 1e-5)

    category = "norm"
    init_transparent = True  # per-channel scale and shift: what follows decides the init
    folds_into_previous = True
    counts = "2C trained (`weight`, `bias`) + 2C buffers (`running_mean`, `running_var`)"
    onnx_ops = "BatchNormalization"

    def affine(self, weight, bias, running_mean, running_var):
        """Its per-channel arithmetic as y = (x - center) * scale + shift: returns (scale, center,
        shift). Works on arrays of any library; nothing is imported here."""
        return weight / (running_var + self.eps) ** 0.5, running_mean, bias

    def infer(self, shapes):
        if len(shapes[0]) not in (1, 3):
            raise RuleError("batchnorm needs a CxHxW or a flat input")
        return shapes[0]

    def params(self, prefix, shapes, out):
        c = (shapes[0][0],)
        return [Param(prefix + ".weight", c, TRAINABLE, "ones"), Param(prefix + ".bias", c, TRAINABLE, "zeros"),
                Param(prefix + ".running_mean", c, BUFFER, "zeros"),
                Param(prefix + ".running_var", c, BUFFER, "ones")]

    def emit(self, b, node, xs):
        inputs = [xs[0]] + [b.param(p) for p in node.params]
        return b.node("BatchNormalization", inputs, node.name, epsilon=self.eps)


@register("lrn")
@dataclass(frozen=True)
class LRN(Layer):
    """lrn SIZE [alpha=1e-4] [beta=0.75] [k=1]: x / (k + alpha/SIZE * sum of x^2 over SIZE channels)^beta"""

    size: int = arg(positive_int, pos=True)
    alpha: float = arg(positive_number, 1e-4)
    beta: float = arg(positive_number, 0.75)
    k: float = arg(positive_number, 1.0)

    category = "norm"
    onnx_ops = "LRN"

    def infer(self, shapes):
        if len(shapes[0]) != 3:
            raise RuleError("lrn needs a CxHxW input")
        if self.size % 2 == 0:
            raise RuleError(f"lrn size must be odd, not {self.size}",
                            "ONNX runtimes require an odd window centred on each channel (PyTorch centres an "
                            "even one differently)", field="size")
        return shapes[0]

    def emit(self, b, node, xs):
        return b.node("LRN", xs, node.name, size=self.size, alpha=self.alpha, beta=self.beta, bias=self.k)
