"""Writing an ONNX model one tensor at a time: protobuf's wire format, by hand, for the weights.

A serialised message is its fields in field-number order; a sub-message is its tag, its length
and its bytes. So a model can be written as: the model's fields before `graph`, the graph's fields
before `initializer`, each initializer (encoded from its array without copying it), the rest of
the graph, the rest of the model. The bytes equal ``model.SerializeToString()`` of the same model
with its initializers filled in, but only one tensor is ever in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from onnx import ModelProto, TensorProto

MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_RAW_DATA = 7, 5, 9
LENGTH_DELIMITED = 2


@dataclass(frozen=True)
class Weight:
    """One initializer to write: its name, shape, and how to make its float32 values: whole, or
    (where ``parts`` is given and returns an iterator) as consecutive flat chunks."""

    name: str
    shape: tuple[int, ...]
    make: Callable[[], np.ndarray]
    parts: Callable[[], Iterator[np.ndarray] | None] | None = None  # seeded values, which fit any dtype
    dtype: str = "float32"  # as stored: float32, or float16 (converted from the float32 values)
    note: str = ""  # how its values were made, where that explains an error (a folded batchnorm)

    @property
    def nbytes(self) -> int:
        return np.dtype(self.dtype).itemsize * math.prod(self.shape)

    @property
    def data_type(self) -> int:
        return DATA_TYPES[self.dtype]

    def stored(self, arr: np.ndarray, check: bool = True) -> np.ndarray:
        """``arr`` (float32 values) as contiguous stored values; a CompileError where a finite value
        does not fit the stored type (``check=False`` for values known to fit)."""
        with np.errstate(over="ignore"):  # reported below, by name
            out = np.ascontiguousarray(arr, dtype=self.dtype)
        if check and self.dtype != "float32" and out.size:
            big = np.isinf(out) & np.isfinite(arr)
            if big.any():
                from cnndsl.errors import CompileError

                worst = float(np.max(np.abs(np.asarray(arr)[big])))
                limit = float(np.finfo(self.dtype).max)
                how = f" ({self.note})" if self.note else ""
                raise CompileError(f"weight {self.name} holds {worst:.6g}{how}, beyond {self.dtype}'s range "
                                   f"(+-{limit:g})", hint="compile without --fold-bn, or as float32" if self.note
                                   else "compile as float32, or rescale the weights")
        return out


DATA_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int) -> bytes:
    return varint(field << 3 | LENGTH_DELIMITED)


def split(msg, number: int, skip: int) -> tuple[bytes, bytes]:
    """``msg``'s fields numbered below ``number``, and above it, serialised; field ``skip`` left out
    (never copied, so a graph's initializers are not duplicated)."""
    lo, hi = type(msg)(), type(msg)()
    for fd, value in msg.ListFields():
        if fd.number == skip:
            continue
        target = lo if fd.number < number else hi
        if _repeated(fd):
            getattr(target, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(target, fd.name).CopyFrom(value)
        else:
            setattr(target, fd.name, value)
    return lo.SerializeToString(), hi.SerializeToString()


def _repeated(fd) -> bool:
    """Across protobuf versions: ``is_repeated`` (5+) or the older ``label``."""
    flag = getattr(fd, "is_repeated", None)
    return flag if flag is not None else fd.label == fd.LABEL_REPEATED


def tensor_header(w: Weight, external: tuple[str, int] | None = None) -> bytes:
    """A TensorProto without its data (inline: the raw_data field follows; external: complete)."""
    t = TensorProto(name=w.name, data_type=w.data_type, dims=w.shape)
    if external is not None:
        location, offset = external
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(w.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        t.data_location = TensorProto.EXTERNAL
    return t.SerializeToString()


def _inline_size(w: Weight) -> int:
    body = len(tensor_header(w)) + len(tag(TENSOR_RAW_DATA)) + len(varint(w.nbytes)) + w.nbytes
    return len(tag(GRAPH_INITIALIZER)) + len(varint(body)) + body


AHEAD = 2  # tensors made ahead of the one being written, on as many threads


def _made_ahead(weights: list[Weight]):
    """Each weight's array, or the iterator of its chunks, the next AHEAD made on worker threads
    while the current one is written (numpy's generators and file writes release the GIL). At most
    AHEAD + 1 tensors are alive."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def make(w):
        parts = w.parts() if w.parts else None
        return parts if parts is not None else w.stored(w.make())

    with ThreadPoolExecutor(max_workers=AHEAD, thread_name_prefix="cnndsl-weights") as pool:
        pending = deque(pool.submit(make, w) for w in weights[:AHEAD])
        for i in range(len(weights)):
            arr = pending.popleft().result()
            if i + AHEAD < len(weights):
                pending.append(pool.submit(make, weights[i + AHEAD]))
            yield arr
            del arr


def write(model: ModelProto, weights: list[Weight], out: BinaryIO, data: BinaryIO | None = None,
          data_name: str = "", progress: Callable[[int, int], None] | None = None) -> None:
    """Write ``model`` (whose graph holds no initializers) with ``weights`` to ``out``.

    With ``data``, tensor values go there as ONNX external data named ``data_name``.
    ``progress(done, total)`` is called with weight bytes written after each tensor.
    """
    total, done = sum(w.nbytes for w in weights), 0
    model_lo, model_hi = split(model, MODEL_GRAPH, skip=MODEL_GRAPH)
    graph_lo, graph_hi = split(model.graph, GRAPH_INITIALIZER, skip=GRAPH_INITIALIZER)
    if data is None:
        sizes = [_inline_size(w) for w in weights]
    else:
        heads, offset = [], 0
        for w in weights:
            heads.append(tensor_header(w, (data_name, offset)))
            offset += w.nbytes
        sizes = [len(tag(GRAPH_INITIALIZER)) + len(varint(len(h))) + len(h) for h in heads]
    graph_size = len(graph_lo) + sum(sizes) + len(graph_hi)
    out.write(model_lo + tag(MODEL_GRAPH) + varint(graph_size) + graph_lo)
    made = _made_ahead(weights)
    try:  # close the generators on any failure, so no drawing thread outlives it
        for i, (w, arr) in enumerate(zip(weights, made, strict=True)):
            if data is None:
                head = tensor_header(w)
                body = len(head) + len(tag(TENSOR_RAW_DATA)) + len(varint(w.nbytes)) + w.nbytes
                out.write(tag(GRAPH_INITIALIZER) + varint(body) + head + tag(TENSOR_RAW_DATA) + varint(w.nbytes))
            else:
                out.write(tag(GRAPH_INITIALIZER) + varint(len(heads[i])) + heads[i])
            done = _write_values(w, arr, out if data is None else data, done, total, progress)
            del arr
            if progress:
                progress(done, total)
    finally:
        made.close()
    out.write(graph_hi + model_hi)


def _write_values(w: Weight, arr, sink: BinaryIO, done: int, total: int, progress) -> int:
    """Write one tensor's values (an array, or an iterator of chunks); returns bytes done so far."""
    if isinstance(arr, np.ndarray):
        if arr.shape != w.shape:
            raise ValueError(f"weight {w.name} has shape {arr.shape}, expected {w.shape}")
        sink.write(memoryview(arr).cast("B"))
        return done + w.nbytes
    start = done
    try:
        for part in arr:
            part = w.stored(part, check=False)  # chunks are seeded He/Glorot values, all within +-2.5
            sink.write(memoryview(part).cast("B"))
            done += part.nbytes
            if progress and done - start < w.nbytes:
                progress(done, total)
    finally:
        arr.close()
    if done - start != w.nbytes:
        raise ValueError(f"weight {w.name} came to {done - start} bytes, expected {w.nbytes}")
    return done
