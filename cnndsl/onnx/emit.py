"""Stage 3, emit: ir.Graph -> onnx.ModelProto, with a pinned opset and IR version."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper

from cnndsl import __version__
from cnndsl.errors import CompileError
from cnndsl.model.ir import Graph, Param
from cnndsl.onnx import fold
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
                 dtype: str = "float32", notes: dict[str, str] | None = None) -> None:
        self.opset = opset
        self.fill = fill
        self.parts = parts
        self.dtype = dtype
        self.notes = notes or {}  # weight name -> how it was made, for error messages (folding)
        self.nodes: list = []
        self.weights: list[Weight] = []

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def param(self, p: Param) -> str:
        fill, parts = self.fill, self.parts
        self.weights.append(Weight(p.name, p.shape, lambda: fill(p), (lambda: parts(p)) if parts else None,
                                   self.dtype, self.notes.get(p.name, "")))
        return p.name

    def scalar(self, name: str, value: float) -> str:
        """A constant scalar of the model's dtype (a Clip's bounds)."""
        return self._constant(helper.make_tensor(name, DATA_TYPES[self.dtype], [], [value]))

    def ints(self, name: str, values: list[int]) -> str:
        """A constant 1-D int64 tensor (a Reshape's shape, an Unsqueeze's axes, Slice bounds), whatever the dtype."""
        return self._constant(helper.make_tensor(name, TensorProto.INT64, [len(values)], list(values)))

    def matrix(self, name: str, rows: list[list[float]]) -> str:
        """A constant 2-D tensor of the model's dtype (an adaptive pool's averaging matrix)."""
        flat = [v for row in rows for v in row]
        return self._constant(helper.make_tensor(name, DATA_TYPES[self.dtype], [len(rows), len(rows[0])], flat))

    def floats(self, name: str, values: list[float]) -> str:
        """A constant 1-D float32 tensor (a Resize's scales), whatever the dtype."""
        return self._constant(helper.make_tensor(name, TensorProto.FLOAT, [len(values)], list(values)))

    def _constant(self, tensor) -> str:
        self.nodes.append(helper.make_node("Constant", [], [tensor.name], name=tensor.name, value=tensor))
        return tensor.name

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
    ``fold_bn`` runs the folding pass (onnx/fold.py) on the graph first.
    ``dtype`` float16 stores weights and computes in half precision behind a float32 interface
    (a Cast after the input and before the output).
    """
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise CompileError(f"opset {opset} is not supported", hint=f"use {MIN_OPSET} to {MAX_OPSET}")
    if dtype not in DATA_TYPES:
        raise CompileError(f"unknown dtype '{dtype}'", hint="use float32 or float16")
    notes: dict[str, str] = {}
    if fold_bn:
        folded = fold.fold(graph, fill, parts)
        graph, fill, parts, notes = folded.graph, folded.fill, folded.parts, folded.notes
    b = GraphBuilder(opset, fill, parts, dtype, notes)
    first = INPUT if dtype == "float32" else b.node("Cast", [INPUT], INPUT + ".half", to=DATA_TYPES[dtype])
    values: list[str] = []
    for node in graph.nodes:
        xs = [first if j < 0 else values[j] for j in node.inputs]
        if node.layer.folds_into_previous and dtype == "float16":
            fold.check_half_range(node, fill)
        values.append(node.layer.emit(b, node, xs))
    outputs = graph.output_list()
    names = output_names(graph)
    named: set[str] = set()
    for out in outputs:
        value = first if out.index < 0 else values[out.index]
        if dtype != "float32":
            b.node("Cast", [value], out.name, to=TensorProto.FLOAT)
        elif value != INPUT and names.get(out.index) == out.name and value not in named:
            _rename(b.nodes, value, out.name)  # the value a layer made (maybe passed through) takes the name
            values = [out.name if v == value else v for v in values]
        else:
            b.node("Identity", [value], out.name)
        named.add(out.name)
    g = helper.make_graph(
        b.nodes, graph.name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", *graph.input_shape])],
        [helper.make_tensor_value_info(o.name, TensorProto.FLOAT, ["N", *graph.shape_of(o.index)]) for o in outputs],
        doc_string=graph.title or "")
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=ir_version_for(opset), producer_name="cnndsl",
                              producer_version=__version__, doc_string=graph.title or "")
    helper.set_model_props(model, {"cnndsl.name": graph.name, "cnndsl.title": graph.title or "",
                                   "cnndsl.seed": str(seed), "cnndsl.dtype": dtype,
                                   "cnndsl.spec": graph.source_text})
    return model, b.weights


def output_names(graph: Graph) -> dict[int, str]:
    """Node index -> the name of the output its value becomes (the first, where it makes several)."""
    names: dict[int, str] = {}
    for out in graph.output_list():
        if out.index >= 0:
            names.setdefault(out.index, out.name)
    return names


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
    names = output_names(graph)
    for i, node in enumerate(graph.nodes):
        name = names.get(i, node.name)
        # The batch axis only has to stay symbolic: ONNX's inference for Resize with `axes` names it anew.
        if name in shapes and (shapes[name][1:] != tuple(node.out_shape) or not isinstance(shapes[name][0], str)):
            raise CompileError(f"internal error: ONNX infers {shapes[name]} for {node.name}, "
                               f"cnndsl computed {('N', *node.out_shape)}")
