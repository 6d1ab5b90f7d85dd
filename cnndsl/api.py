"""The Python API: parse or load a spec, get a checked Network with counts, ONNX and a runner."""

from __future__ import annotations

from pathlib import Path

from cnndsl.lang.parse import parse as parse_text
from cnndsl.model.check import check
from cnndsl.model.ir import Graph
from cnndsl.views import report


class Network:
    """A checked network. Cheap to make: nothing is allocated until ``to_onnx`` or ``run``."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.graph.output_shape

    @property
    def totals(self) -> report.Totals:
        return report.totals(self.graph)

    def summary(self) -> str:
        return report.summary(self.graph)

    def to_onnx(self, seed: int = 0, opset: int | None = None, weights=None, strict: bool = True,
                fold_bn: bool = False, dtype: str = "float32"):
        """An onnx.ModelProto, checked against our own shapes.

        ``weights`` is a path (.safetensors, .npz, .onnx) or a dict name -> array, matched by name
        (strictly, unless ``strict=False``); other weights are seeded. ``dtype="float16"`` stores
        and computes in half precision behind float32 inputs and outputs.
        """
        from cnndsl.onnx.compile import compile_model

        loaded = None
        if weights is not None:
            from cnndsl.weights.files import read_weights
            from cnndsl.weights.seeded import match_weights

            tensors = weights if isinstance(weights, dict) else read_weights(str(weights))
            loaded, _ = match_weights(self.graph, tensors, str(weights) if not isinstance(weights, dict)
                                      else "<dict>", strict)
        return compile_model(self.graph, seed=seed, opset=opset, weights=loaded, fold_bn=fold_bn, dtype=dtype)

    def run(self, x, device: str = "auto", seed: int = 0):
        """Run on a batch ``x`` (N x input shape, float32); returns (output array, provider)."""
        from cnndsl.runtime.run import Runner

        runner = Runner.from_model(self.to_onnx(seed=seed).SerializeToString(), device=device)
        return runner.run(x), runner.provider

    def __repr__(self) -> str:
        t = self.totals
        return f"<Network {self.name}: {t.params:,} params, {t.macs:,} MACs>"


def parse(text: str, path: str = "<string>") -> Network:
    """Parse and check spec text; raises cnndsl.errors.CnnDslError on a mistake."""
    return Network(check(parse_text(text, path)))


def load(path: str | Path) -> Network:
    """Read, parse and check a .cnn file."""
    from cnndsl.errors import CnnDslError

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CnnDslError(f"cannot read the spec: {exc.strerror}", path=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnDslError(f"the spec is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
                          path=str(path), hint="save the file as UTF-8") from None
    return parse(text, str(path))
