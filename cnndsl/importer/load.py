"""Reading an ONNX model to import (untrusted input): the graph as plain ops in topological order,
its constants (read only when asked for), and the shapes ONNX infers.

Nothing here allocates a weight: initializers stay ``Stored`` (their data is read when the
weights are written out, one at a time), external data is read only from regular files inside
the model's own folder, and a malformed model is an ImportModelError naming what is wrong.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from cnndsl.errors import ImportModelError
from cnndsl.io import reading
from cnndsl.lang.show import printable
from cnndsl.memory import ensure_fits
from cnndsl.weights.arrays import ArrayFileError, Stored
from cnndsl.weights.files import onnx_initializers

MIN_OPSET, MAX_OPSET = 7, 23  # the default domain's versions whose operators import reads
MAX_CONSTANT = 1 << 20  # elements of a Constant node's value read for folding (shapes, clip bounds)
MAX_NODES = 200_000


@dataclass
class Op:
    """One ONNX node, as plain data."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    index: int  # its place in the file, for messages

    def where(self) -> str:
        ins = ", ".join(printable(i) or "(none)" for i in self.inputs)
        return f"node '{printable(self.name) or f'#{self.index}'}' ({self.op}, inputs {ins})"


@dataclass
class Source:
    """A model to import: its one input, outputs, ops in topological order and constants."""

    path: str
    ops: list[Op]
    input: str
    input_shape: tuple[int, ...]  # per sample: (C, H, W) or (F,)
    batch: int | str | None  # the batch axis as the model gives it: a number, a symbol, or None
    outputs: list[str]
    initializers: dict[str, Stored]
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # Constant nodes' small values
    shapes: dict[str, tuple] = field(default_factory=dict)  # inferred shapes (None for an unknown axis)
    opset: int = 0
    producer: str = ""
    node_count: int = 0

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or name in self.constants

    def value(self, name: str, limit: int = MAX_CONSTANT) -> np.ndarray:
        """A constant's value (an initializer is read here, bounded by ``limit`` elements)."""
        if name in self.constants:
            return self.constants[name]
        stored = self.initializers[name]
        if math.prod(stored.shape) > limit:
            raise ImportModelError(f"constant '{printable(name)}' has {math.prod(stored.shape):,} elements where a "
                                   "small value (a shape or a bound) was expected", path=self.path)
        return self.load(name)

    def load(self, name: str) -> np.ndarray:
        try:
            return self.initializers[name].load()
        except ArrayFileError as exc:
            raise ImportModelError(str(exc), path=self.path) from None

    def shape(self, name: str) -> tuple | None:
        """The full inferred shape of a tensor (with the batch axis), or None where unknown."""
        if name in self.shapes:
            return self.shapes[name]
        if name in self.initializers:
            return self.initializers[name].shape
        if name in self.constants:
            return self.constants[name].shape
        return None


def load_source(path: str) -> Source:
    """Read and check the model at ``path``; raise ImportModelError for anything unreadable."""
    import onnx
    from onnx import helper

    def fail(message: str, hint: str | None = None) -> ImportModelError:
        return ImportModelError(message, path=path, hint=hint)

    if not os.path.isfile(path):
        raise fail("not a regular file" if os.path.exists(path) else "no such file")
    reading(path)
    ensure_fits(os.path.getsize(path) * 3, lambda why: fail(f"the model cannot be read: {why}"))
    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any malformed protobuf
        raise fail(f"not a readable ONNX model ({type(exc).__name__}: the file is truncated or not ONNX)") from None
    g = model.graph
    opset = 0
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            opset = entry.version
    if not opset:
        raise fail("the model imports no version of the standard ONNX operators")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise fail(f"opset {opset} is outside what import reads ({MIN_OPSET} to {MAX_OPSET})")
    if len(g.node) > MAX_NODES:
        raise fail(f"{len(g.node):,} nodes exceed the limit of {MAX_NODES:,}")
    try:
        initializers = onnx_initializers(model, os.path.dirname(os.path.abspath(path)))
    except ArrayFileError as exc:
        raise fail(str(exc)) from None
    ops = [Op(n.name, n.op_type, list(n.input), list(n.output),
              {a.name: helper.get_attribute_value(a) for a in n.attribute}, i) for i, n in enumerate(g.node)]
    for n, op in zip(g.node, ops, strict=True):
        if n.domain not in ("", "ai.onnx"):
            raise fail(f"{op.where()} is from the operator set '{printable(n.domain)}', which cnndsl does not know",
                       "import reads the standard ONNX operators only")
        if any(isinstance(v, onnx.GraphProto) for v in op.attrs.values()):
            raise fail(f"{op.where()} has a subgraph (control flow), which no cnndsl statement expresses",
                       "cnndsl networks are fixed graphs of layers")
    data_inputs = [i for i in g.input if i.name not in initializers]
    if len(data_inputs) != 1:
        raise fail(f"the model has {len(data_inputs)} inputs ({', '.join(printable(i.name) for i in data_inputs)}); "
                   "a cnndsl network has one", "import a model with one image (or feature vector) input")
    x = data_inputs[0]
    batch, per_sample = _input_shape(x, fail)
    source = Source(path, _topological(ops, {x.name, *initializers}, fail), x.name, per_sample, batch,
                    [o.name for o in g.output], initializers, opset=opset, producer=model.producer_name,
                    node_count=len(g.node))
    if not source.outputs:
        raise fail("the model has no outputs")
    for op in source.ops:
        if op.op == "Constant":
            value = _constant(op, fail)
            if value is not None:
                source.constants[op.outputs[0]] = value
    source.shapes = _inferred_shapes(model)
    source.shapes[x.name] = (batch, *per_sample)
    return source


def _input_shape(x, fail) -> tuple[int | str | None, tuple[int, ...]]:
    from onnx import TensorProto

    t = x.type.tensor_type
    if not x.type.HasField("tensor_type") or t.elem_type not in (TensorProto.FLOAT, TensorProto.FLOAT16,
                                                                   TensorProto.DOUBLE):
        raise fail(f"the input '{printable(x.name)}' is not a tensor of floating-point numbers")
    if not t.HasField("shape"):
        raise fail(f"the input '{printable(x.name)}' has no rank", "export the model with a known input shape")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    if len(dims) not in (2, 4):
        raise fail(f"the input '{printable(x.name)}' has {len(dims)} axes; cnndsl networks take NxCxHxW images or "
                   "NxF feature vectors")
    per_sample = dims[1:]
    if not all(isinstance(d, int) and d > 0 for d in per_sample):
        shown = "x".join(str(d) if d is not None else "?" for d in per_sample)
        raise fail(f"the input '{printable(x.name)}' is {shown} per sample; import needs every axis but the batch "
                   "fixed", "export the model with a fixed image size (a dynamic batch is fine)")
    return dims[0], tuple(per_sample)


def _topological(ops: list[Op], known: set[str], fail) -> list[Op]:
    """The ops in an order where each comes after what it reads; an error for a cycle or for an
    input that nothing makes."""
    producer = {}
    for op in ops:
        for o in op.outputs:
            if o:
                if o in producer or o in known:
                    raise fail(f"{op.where()} makes '{printable(o)}', which is already made elsewhere in the graph")
                producer[o] = op
    for op in ops:
        for i in op.inputs:
            if i and i not in producer and i not in known:
                raise fail(f"{op.where()} reads '{printable(i)}', which no node, initializer or input makes",
                           "the graph is incomplete (a dangling input)")
    order, state = [], {}
    for root in ops:
        if state.get(id(root)):
            continue
        stack = [(root, iter(root.inputs))]
        state[id(root)] = 1
        while stack:
            op, it = stack[-1]
            for i in it:
                dep = producer.get(i)
                if dep is None:
                    continue
                s = state.get(id(dep))
                if s == 1:
                    raise fail(f"the graph has a cycle through {dep.where()}", "an ONNX graph must be acyclic")
                if s is None:
                    state[id(dep)] = 1
                    stack.append((dep, iter(dep.inputs)))
                    break
            else:
                stack.pop()
                state[id(op)] = 2
                order.append(op)
    return order


def _constant(op: Op, fail) -> np.ndarray | None:
    from onnx import numpy_helper

    if "value" in op.attrs:
        t = op.attrs["value"]
        if math.prod(t.dims) > MAX_CONSTANT:
            return None
        try:
            return numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - a malformed tensor
            raise fail(f"{op.where()}: its value is unreadable") from None
    for key, kind in (("value_float", np.float32), ("value_int", np.int64)):
        if key in op.attrs:
            return np.array(op.attrs[key], kind)
    for key, kind in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in op.attrs and len(op.attrs[key]) <= MAX_CONSTANT:
            return np.array(list(op.attrs[key]), kind)
    return None


def _inferred_shapes(model) -> dict[str, tuple]:
    """Every tensor's shape that ONNX shape inference finds (an unknown axis is None, a symbolic
    one its name); nothing where inference fails."""
    import onnx
    from onnx import helper

    light = onnx.ModelProto()  # the graph without the weights' data: inference needs their shapes only
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.node.extend(model.graph.node)
    g.output.extend(model.graph.output)
    inits = {t.name for t in model.graph.initializer}
    g.input.extend(i for i in model.graph.input if i.name not in inits)
    for t in model.graph.initializer:
        if math.prod(t.dims) <= 64 and t.data_location != onnx.TensorProto.EXTERNAL:
            g.initializer.append(t)  # a shape or a bound: data propagation may need its value
        else:
            g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement
        inferred = light
    out = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                 for d in t.shape.dim)
    return out
