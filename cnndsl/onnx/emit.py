"""Stage 3, emit: ir.Graph -> onnx.ModelProto, with a pinned opset and IR version."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper

from cnndsl import __version__
from cnndsl.errors import CompileError
from cnndsl.model.ir import Graph, Param
from cnndsl.onnx.protowire import DATA_TYPES, Weight

DEFAULT_OPSET = 21
MIN_OPSET = 19  # ceil-mode pooling semantics as in PyTorch from opset 19
MAX_OPSET = 23  # the newest opset the pinned onnxruntime range is tested with
INPUT, OUTPUT = "input", "output"


def ir_version_for(opset: int) -> int:
    """The lowest IR version that can carry ``opset`` (so older runtimes load the model)."""
    return helper.find_min_ir_version_for([helper.make_opsetid("", opset)])


class GraphBuilder:
    """A small builder over onnx.helper: nodes and constants now, weights deferred (protowire.Weight)."""

    def __init__(self, opset: int, fill: Callable[[Param], np.ndarray],
                 parts: Callable[[Param], Iterator[np.ndarray] | None] | None = None,
                 dtype: str = "float32") -> None:
        self.opset = opset
        self.fill = fill
        self.parts = parts
        self.dtype = dtype
        self.note = ""  # how the next weights were made, for error messages (folding)
        self.nodes: list = []
        self.weights: list[Weight] = []

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def param(self, p: Param) -> str:
        fill, parts = self.fill, self.parts
        self.weights.append(Weight(p.name, p.shape, lambda: fill(p), (lambda: parts(p)) if parts else None,
                                   self.dtype, self.note))
        return p.name

    def scalar(self, name: str, value: float) -> str:
        const = helper.make_tensor(name, DATA_TYPES[self.dtype], [], [value])
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=const))
        return name

    def need_opset(self, version: int, what: str) -> None:
        if self.opset < version:
            raise CompileError(f"{what} needs opset {version} or later; compiling for opset {self.opset}",
                               hint=f"use --opset {max(version, DEFAULT_OPSET)}")


def materialize(model: onnx.ModelProto, weights: list[Weight]) -> None:
    """Fill the model's initializers from deferred weights."""
    for w in weights:
        arr = w.stored(w.make())
        if arr.shape != w.shape:
            raise CompileError(f"weight {w.name} has shape {arr.shape}, expected {w.shape}")
        tensor = model.graph.initializer.add()
        tensor.name, tensor.data_type = w.name, w.data_type
        tensor.dims.extend(w.shape)
        tensor.raw_data = arr.tobytes()


def build(graph: Graph, *, seed: int, opset: int, fill: Callable[[Param], np.ndarray],
          parts: Callable[[Param], Iterator[np.ndarray] | None] | None, fold_bn: bool, dtype: str,
          ) -> tuple[onnx.ModelProto, list[Weight]]:
    """The model without its initializers, and the weights to write (nothing is drawn yet).

    ``fill(param)`` supplies weights (weights.seeded.fillers); ``parts(param)``, where it returns an
    iterator, the same values in flat chunks for streaming; ``seed`` is recorded in the metadata;
    ``fold_bn`` folds each batchnorm that is the only consumer of a conv into that conv's weights.
    ``dtype`` float16 stores weights and computes in half precision behind a float32 interface
    (a Cast after the input and before the output).
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise CompileError(f"opset {opset} is not supported", hint=f"use {MIN_OPSET} to {MAX_OPSET}")
    folds = bn_folds(graph) if fold_bn else {}
    if dtype not in DATA_TYPES:
        raise CompileError(f"unknown dtype '{dtype}'", hint="use float32 or float16")
    b = GraphBuilder(opset, fill, parts, dtype)
    first = INPUT if dtype == "float32" else b.node("Cast", [INPUT], INPUT + ".half", to=DATA_TYPES[dtype])
    values: list[str] = []
    for i, node in enumerate(graph.nodes):
        xs = [first if j < 0 else values[j] for j in node.inputs]
        if node.kind == "batchnorm" and folds.get(node.inputs[0]) == i:
            values.append(xs[0])  # folded into the conv before it
            continue
        if node.kind == "batchnorm" and dtype == "float16":
            _check_half_batchnorm(node, fill)
        if i in folds:
            bn = graph.nodes[folds[i]]
            node, folded = _folded(node, bn, fill)
            b.fill = lambda p, folded=folded: folded[p.name]() if p.name in folded else fill(p)
            b.parts = parts and (lambda p, folded=folded: None if p.name in folded else parts(p))
            b.note = f"after folding batchnorm '{bn.name}' into it"
        values.append(node.layer.emit(b, node, xs))
        b.fill, b.parts, b.note = fill, parts, ""
    last = values[-1] if values else first
    if dtype != "float32":
        b.node("Cast", [last], OUTPUT, to=TensorProto.FLOAT)
    elif last != INPUT:
        _rename(b.nodes, last, OUTPUT)
    else:
        b.node("Identity", [INPUT], OUTPUT)
    g = helper.make_graph(
        b.nodes, graph.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", *graph.input_shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", *graph.output_shape])],
        doc_string=graph.title or "")
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=ir_version_for(opset), producer_name="cnndsl",
                              producer_version=__version__, doc_string=graph.title or "")
    helper.set_model_props(model, {"cnndsl.name": graph.name, "cnndsl.title": graph.title or "",
                                   "cnndsl.seed": str(seed), "cnndsl.dtype": dtype,
                                   "cnndsl.spec": graph.source_text})
    return model, b.weights


def bn_folds(graph: Graph) -> dict[int, int]:
    """conv index -> index of the batchnorm that alone consumes it (foldable pairs)."""
    consumers = graph.consumers()
    folds = {}
    for i, node in enumerate(graph.nodes):
        after = consumers.get(i, [])
        if node.kind == "conv" and len(after) == 1 and graph.nodes[after[0]].kind == "batchnorm":
            folds[i] = after[0]
    return folds


def _folded(conv, bn, fill):
    """A copy of ``conv`` with a bias, and its folded weights by name, each made when asked for
    (so a streamed compile holds one folded tensor at a time).

    y = gamma * (W x + b - mean) / sqrt(var + eps) + beta  ==  W' x + b', with
    W' = W * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps), per output channel.
    """
    from dataclasses import replace

    from cnndsl.model.ir import TRAINABLE

    w = conv.params[0]
    bias = Param(conv.name + ".bias", (w.shape[0],), TRAINABLE, "zeros")

    def statistics():
        gamma, beta, mean, var = (np.asarray(fill(p), np.float64) for p in bn.params)
        return gamma / np.sqrt(var + bn.layer.eps), beta, mean

    def weight():
        scale, _, _ = statistics()
        return (np.asarray(fill(w), np.float64) * scale[:, None, None, None]).astype(np.float32)

    def shift():
        scale, beta, mean = statistics()
        old_b = np.asarray(fill(conv.params[1]), np.float64) if len(conv.params) > 1 else 0.0
        return ((old_b - mean) * scale + beta).astype(np.float32)

    node = replace(conv, layer=replace(conv.layer, bias=True), params=(w, bias))
    return node, {w.name: weight, bias.name: shift}


def _check_half_batchnorm(node, fill) -> None:
    """A batchnorm whose scale gamma / sqrt(var + eps) exceeds float16's range overflows every
    output in a float16 model: refuse it at compile time rather than let it run to NaN."""
    gamma, _, _, var = (np.asarray(fill(p), np.float64) for p in node.params)
    scale = np.abs(gamma) / np.sqrt(var + node.layer.eps)
    limit = float(np.finfo(np.float16).max)
    if np.any(scale > limit):
        raise CompileError(f"batchnorm '{node.name}' scales by up to {float(scale.max()):.6g} "
                           f"(gamma / sqrt(running_var + eps)), beyond float16's range (+-{limit:g})",
                           node.span, "compile as float32, or check its running_var")


def _rename(nodes: list, old: str, new: str) -> None:
    for n in nodes:
        for i, name in enumerate(n.output):
            if name == old:
                n.output[i] = new
        for i, name in enumerate(n.input):
            if name == old:
                n.input[i] = new


def skeleton(model: onnx.ModelProto, weights: list[Weight] | None = None) -> onnx.ModelProto:
    """The model without weight data: each initializer (or deferred weight) becomes a graph input of
    the same type and shape. Checking and shape inference see the same graph, without the weights."""
    g = model.graph
    shapes = [(w.name, w.data_type, w.shape) for w in weights] if weights is not None else \
        [(t.name, t.data_type, tuple(t.dims)) for t in g.initializer]
    inputs = [helper.make_tensor_value_info(name, kind, list(shape)) for name, kind, shape in shapes]
    graph = helper.make_graph(list(g.node), g.name, list(g.input) + inputs, list(g.output))
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def verify(model: onnx.ModelProto, graph: Graph, weights: list[Weight] | None = None) -> None:
    """Check our own output: the ONNX checker, and strict shape inference equal to our shapes."""
    light = skeleton(model, weights)
    try:
        onnx.checker.check_model(light, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise CompileError(f"internal error: the ONNX checker rejects the compiled model: {exc}") from None
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_param or d.dim_value for d in dims)
    for i, node in enumerate(graph.nodes):
        name = OUTPUT if i == len(graph.nodes) - 1 else node.name
        if name in shapes and shapes[name] != ("N", *node.out_shape):
            raise CompileError(f"internal error: ONNX infers {shapes[name]} for {node.name}, "
                               f"cnndsl computed {('N', *node.out_shape)}")
