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
from cnndsl.importer.wire import Span, WireError, read_light, read_span
from cnndsl.io import reading
from cnndsl.lang.show import printable
from cnndsl.weights.arrays import ArrayFileError, Extent, Stored
from cnndsl.weights.files import onnx_initializers

MIN_OPSET, MAX_OPSET = 7, 23  # the default domain's versions whose operators import reads
MAX_CONSTANT = 1 << 20  # elements of a Constant node's value read for folding (shapes, clip bounds)
MAX_NODES = 200_000
MAX_ROUNDS = 64  # of inference and folding: each reshape computed from a shape computed so needs one more


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
    folded: set[str] = field(default_factory=set)  # constants the model computes from constants
    aliases: dict[str, str] = field(default_factory=dict)  # an Identity of a constant -> the constant (an
    # exporter that stores equal weights once names the others this way)
    opset: int = 0
    producer: str = ""
    node_count: int = 0
    partial: str | None = None  # an import that stops early (--partial): where and why

    def is_constant(self, name: str) -> bool:
        name = self.aliases.get(name, name)
        return name in self.initializers or name in self.constants

    def value(self, name: str, limit: int = MAX_CONSTANT) -> np.ndarray:
        """A constant's value (an initializer is read here, bounded by ``limit`` elements)."""
        name = self.aliases.get(name, name)
        if name in self.constants:
            return self.constants[name]
        stored = self.initializers[name]
        if math.prod(stored.shape) > limit:
            raise ImportModelError(f"constant '{printable(name)}' has {math.prod(stored.shape):,} elements where a "
                                   "small value (a shape or a bound) was expected", path=self.path)
        return self.load(name)

    def stored(self, name: str) -> Stored | None:
        """The initializer a name stands for (None for a constant the model computes or holds in a node)."""
        return self.initializers.get(self.aliases.get(name, name))

    def load(self, name: str) -> np.ndarray:
        name = self.aliases.get(name, name)
        if name in self.constants:
            return self.constants[name]
        try:
            return self.initializers[name].load()
        except ArrayFileError as exc:
            raise ImportModelError(str(exc), path=self.path) from None

    def shape(self, name: str) -> tuple | None:
        """The full inferred shape of a tensor (with the batch axis), or None where unknown."""
        name = self.aliases.get(name, name)
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
    try:
        model, spans = read_light(path)
    except (WireError, OSError) as exc:
        raise fail(f"not a readable ONNX model ({exc}: the file is truncated or not ONNX)") from None
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
    for index, span in spans.items():  # raw bytes left in the file: read one tensor at a time, when asked for
        t = model.graph.initializer[index]
        old = initializers[t.name]
        if span.length != old.nbytes:
            raise fail(f"initializer '{printable(t.name)}' has {span.length:,} bytes of data, but its shape and type "
                       f"take {old.nbytes:,}")
        initializers[t.name] = Stored(old.name, old.shape, old.dtype, _span_reader(path, span, old),
                                      Extent(path, span.offset, span.length))
    for where, value in _strings(g):
        if not isinstance(value, str):  # protobuf hands back the bytes of a string that is not UTF-8
            raise fail(f"{where} is not text (not UTF-8: {printable(repr(value))[:80]})")
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
    for name, stored in initializers.items():  # shapes and bounds: inference and folding need their values
        if math.prod(stored.shape) <= 64:
            source.constants[name] = source.load(name)
    for _ in range(MAX_ROUNDS):  # shapes let shape arithmetic fold; folded values let inference see further
        source.shapes = _inferred_shapes(model, source.constants)
        source.shapes[x.name] = (batch if isinstance(batch, int) and batch > 0 else 1, *per_sample)  # as inferred
        known = len(source.constants) + len(source.aliases)
        _fold(source)
        if len(source.constants) + len(source.aliases) == known:
            break
    return source


def _strings(g):
    """(what, value) for each name in the graph."""
    for n in g.node:
        yield "a node's name", n.name
        yield "a node's operator", n.op_type
        yield "a node's domain", n.domain
        for name in [*n.input, *n.output]:
            yield "a tensor's name", name
    for vi in [*g.input, *g.output]:
        yield "a tensor's name", vi.name


def _span_reader(path: str, span: Span, stored: Stored):
    def read() -> np.ndarray:
        try:
            data = read_span(path, span)
        except (OSError, WireError) as exc:
            raise ArrayFileError(f"tensor '{printable(stored.name)}': cannot be read ({exc})") from None
        return np.frombuffer(data, dtype=stored.dtype.newbyteorder("<")).reshape(stored.shape)

    return read


def _fold(source: Source) -> None:
    """Compute, once, what the model computes from constants alone: shape arithmetic (Shape,
    Gather, Unsqueeze, Concat, ...), zero biases an exporter builds with Expand and CastLike, and
    Identity of a weight (an exporter that stores equal weights once names the others so). Each
    value is bounded by MAX_CONSTANT elements; what cannot be folded is left to the lifting, which
    says what it is if the network needs it."""
    for op in source.ops:
        if not op.outputs or not op.outputs[0] or op.op not in _FOLDERS:
            continue
        if op.op == "Identity":
            if op.inputs and source.is_constant(op.inputs[0]):
                source.aliases[op.outputs[0]] = source.aliases.get(op.inputs[0], op.inputs[0])
            continue
        try:
            value = _FOLDERS[op.op](source, op)
        except Exception:  # noqa: BLE001 - not foldable (data, bad attributes, too large): left as an op
            continue
        if value is not None and value.size <= MAX_CONSTANT:
            source.constants[op.outputs[0]] = value
            source.folded.add(op.outputs[0])


def _consts(source: Source, op: Op) -> list:
    """The values of the op's inputs, or ValueError where one is not constant ('' is None)."""
    out = []
    for name in op.inputs:
        if not name:
            out.append(None)
        elif source.is_constant(name):
            out.append(source.value(name))
        else:
            raise ValueError(name)
    return out


def _shape(source: Source, op: Op) -> np.ndarray:
    shape = source.shape(op.inputs[0])
    if shape is None or not all(isinstance(d, int) for d in shape):
        raise ValueError("not static")
    start, end = op.attrs.get("start", 0), op.attrs.get("end", None)
    return np.array(shape[start:end], np.int64)


def _axes(op: Op, values: list, index: int = 1) -> list[int]:
    if len(values) > index and values[index] is not None:
        return [int(a) for a in values[index].reshape(-1)]
    return [int(a) for a in op.attrs.get("axes", [])]


def _unsqueeze(source: Source, op: Op) -> np.ndarray:
    v = _consts(source, op)
    out = v[0]
    for a in sorted(a % (out.ndim + len(_axes(op, v))) for a in _axes(op, v)):
        out = np.expand_dims(out, a)
    return out


def _squeeze(source: Source, op: Op) -> np.ndarray:
    v = _consts(source, op)
    axes = _axes(op, v)
    return np.squeeze(v[0], axis=tuple(axes) if axes else None)


def _slice(source: Source, op: Op) -> np.ndarray:
    v = _consts(source, op)
    data = v[0]
    if len(v) > 1:
        starts, ends = v[1].reshape(-1), v[2].reshape(-1)
        axes = v[3].reshape(-1) if len(v) > 3 and v[3] is not None else range(len(starts))
        steps = v[4].reshape(-1) if len(v) > 4 and v[4] is not None else [1] * len(starts)
    else:
        starts, ends = op.attrs["starts"], op.attrs["ends"]
        axes, steps = op.attrs.get("axes", range(len(starts))), [1] * len(starts)
    index = [slice(None)] * data.ndim
    for a, b, e, st in zip(axes, starts, ends, steps, strict=False):
        index[int(a)] = slice(int(b), int(e), int(st))
    return data[tuple(index)]


def _expand(source: Source, op: Op) -> np.ndarray:
    data, shape = _consts(source, op)
    target = np.broadcast_shapes(data.shape, tuple(int(d) for d in shape))
    if math.prod(target) > MAX_CONSTANT:
        raise ValueError("too large")
    return np.broadcast_to(data, target).copy()


def _reshape(source: Source, op: Op) -> np.ndarray:
    data, shape = _consts(source, op)[:2]
    dims = [int(d) for d in shape]
    if not op.attrs.get("allowzero", 0):
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return data.reshape(dims)


def _binary(fn):
    def fold(source: Source, op: Op) -> np.ndarray:
        a, b = _consts(source, op)
        if math.prod(np.broadcast_shapes(a.shape, b.shape)) > MAX_CONSTANT:
            raise ValueError("too large")
        return fn(a, b)
    return fold


def _cast_like(source: Source, op: Op) -> np.ndarray:
    value = _consts(source, Op(op.name, op.op, op.inputs[:1], op.outputs, op.attrs, op.index))[0]
    like = op.inputs[1]
    dtype = source.value(like).dtype if source.is_constant(like) else np.float32  # the network's data is float
    return value.astype(dtype)


def _cast(source: Source, op: Op) -> np.ndarray:
    from onnx import helper

    return _consts(source, op)[0].astype(helper.tensor_dtype_to_np_dtype(int(op.attrs["to"])))


def _constant_of_shape(source: Source, op: Op) -> np.ndarray:
    from onnx import numpy_helper

    shape = [int(d) for d in _consts(source, op)[0]]
    if math.prod(shape) > MAX_CONSTANT:
        raise ValueError("too large")
    value = numpy_helper.to_array(op.attrs["value"]) if "value" in op.attrs else np.zeros(1, np.float32)
    return np.full(shape, value.reshape(-1)[0], value.dtype)


def _int_div(a, b):
    return np.trunc(a / b).astype(a.dtype) if np.issubdtype(a.dtype, np.integer) else a / b


def _range(source: Source, op: Op) -> np.ndarray:
    start, limit, delta = (v.reshape(-1)[0] for v in _consts(source, op))
    if delta == 0 or max(0, math.ceil((limit - start) / delta)) > MAX_CONSTANT:
        raise ValueError("too long")
    return np.arange(start, limit, delta, dtype=np.result_type(start, limit, delta))


_FOLDERS = {
    "Identity": None,
    "Shape": _shape,
    "Gather": lambda s, op: np.take(*_consts(s, op), axis=int(op.attrs.get("axis", 0))),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda s, op: np.concatenate(_consts(s, op), axis=int(op.attrs.get("axis", 0))),
    "Cast": _cast,
    "CastLike": _cast_like,
    "Expand": _expand,
    "Reshape": _reshape,
    "Slice": _slice,
    "ConstantOfShape": _constant_of_shape,
    "Transpose": lambda s, op: np.transpose(_consts(s, op)[0], op.attrs.get("perm")),
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _binary(_int_div),
    "Neg": lambda s, op: -_consts(s, op)[0],
    "Range": _range,
}


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


def _inferred_shapes(model, constants: dict[str, np.ndarray]) -> dict[str, tuple]:
    """Every tensor's shape that ONNX shape inference finds (an unknown axis is None, a symbolic
    one its name; the input's batch is taken as 1); nothing where inference fails."""
    import onnx
    from onnx import helper, numpy_helper

    light = onnx.ModelProto()  # the graph without the weights' data: inference needs their shapes only
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.node.extend(n for n in model.graph.node if not (n.output and n.output[0] in constants))
    for k, v in constants.items():
        if v.size <= 4096:
            g.initializer.append(numpy_helper.from_array(v, k))
        else:  # its shape is enough
            g.input.append(helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    g.output.extend(model.graph.output)
    inits = {t.name for t in model.graph.initializer}
    for i in model.graph.input:
        if i.name not in inits:
            g.input.append(i)
            dims = g.input[-1].type.tensor_type.shape.dim
            if dims and not dims[0].dim_value > 0:  # a symbolic batch: inferred as 1, so that shapes computed
                dims[0].dim_value = 1  # from it (torch's x.view(b, ...) of x.size()) fold to constants
    for t in model.graph.initializer:
        if t.name not in constants:  # (small ones are among the constants, with their values)
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
