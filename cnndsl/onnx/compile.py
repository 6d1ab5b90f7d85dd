"""Compiling with guards: refuse what cannot fit before allocating; publish outputs whole."""

from __future__ import annotations

import math
import os
import shutil

from cnndsl.errors import CompileError
from cnndsl.lang.show import human_bytes
from cnndsl.memory import available_memory
from cnndsl.model.counts import totals
from cnndsl.model.ir import Graph
from cnndsl.onnx.output import open_output

PROTOBUF_LIMIT = 2 ** 31 - 2 ** 26  # keep well under protobuf's 2 GiB: beyond, use external data
PEAK_FACTOR = 3  # arrays + tensor bytes + serialised buffer, at worst, while compiling in memory
STREAM_OVERHEAD = 64 << 20  # staging buffers and the model's graph, when compiling to a file
DISK_MARGIN = 16 << 20  # the graph, protobuf framing and a little room
ITEMSIZE = {"float32": 4, "float16": 2}


def check_fits(graph: Graph, path: str | None = None, dtype: str = "float32") -> None:
    """Refuse, before allocating or writing anything, a model that cannot be compiled here.

    In memory (``path`` None) a model needs about PEAK_FACTOR times its weights. Streamed to
    ``path``, it needs only the tensors in flight (large seeded tensors go in chunks) in memory,
    and its weight bytes on the disk that holds ``path``.
    """
    t = totals(graph)
    size = t.weight_bytes * ITEMSIZE[dtype] // 4
    kind = f"{t.params + t.buffers + t.constants:,} {dtype} weights take {human_bytes(size)}"
    free = available_memory()
    need = _streamed_memory(graph) if path is not None else t.weight_bytes * PEAK_FACTOR
    if free is not None and need > free:
        raise CompileError(
            f"cannot compile {graph.name} here: its {kind}, and compiling needs about {human_bytes(need)} of "
            f"memory, but this machine has {human_bytes(free)} available", None,
            "counting and checking need no weights: `cnndsl params` and `cnndsl summary` work on it",
            _largest_layer_note(graph), path=graph.path)
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            disk = shutil.disk_usage(folder).free
        except OSError:  # a missing folder: reported when writing
            return
        if size + DISK_MARGIN > disk:
            raise CompileError(
                f"cannot compile {graph.name} here: its {kind}, but {folder} has {human_bytes(disk)} free",
                None, "write it to a disk with more room (-o), or use --dtype float16 to halve it; "
                "`cnndsl params` and `cnndsl summary` need no weights", _largest_layer_note(graph),
                path=graph.path)


def _streamed_memory(graph: Graph) -> int:
    """Memory for compiling to a file: AHEAD + 1 tensors in flight, each whole (12 bytes a value at
    worst, when a batchnorm is folded into it in float64) or, for large seeded tensors, as chunks."""
    from cnndsl.onnx.protowire import AHEAD
    from cnndsl.weights.seeded import CHUNK

    def held(p) -> int:
        if p.init in ("he", "glorot") and p.size > CHUNK:
            return 3 * CHUNK * 4
        return 12 * p.size

    largest = max((held(p) for p in graph.params()), default=0)
    return (AHEAD + 1) * largest + STREAM_OVERHEAD


def _largest_layer_note(graph: Graph) -> tuple:
    biggest = max(graph.nodes, key=lambda n: sum(p.size for p in n.params))
    size = sum(p.size for p in biggest.params)
    return (((f"the largest layer, '{biggest.name}', alone holds {size:,} parameters "
              f"({human_bytes(size * 4)})"), biggest.span),)


def check_run_fits(graph: Graph, batch: int) -> None:
    """Refuse, before running, a batch whose largest activations cannot fit in memory here."""
    free = available_memory()
    biggest = max(graph.nodes, key=lambda n: n.out_elements)
    widest = max(sum(graph.nodes[i].out_elements if i >= 0 else math.prod(graph.input_shape) for i in n.inputs)
                 + n.out_elements for n in graph.nodes)
    need = (widest * batch + math.prod(graph.input_shape) * batch) * 4 + totals(graph).weight_bytes
    if free is None or need <= free:
        return
    raise CompileError(
        f"running {graph.name} on a batch of {batch} needs about {human_bytes(need)} of memory, but this machine "
        f"has {human_bytes(free)} available", None, "use a smaller --batch or a smaller input",
        ((f"the largest activation, '{biggest.name}', holds {biggest.out_elements:,} values per sample",
          biggest.span),), path=graph.path)


def compile_graph(graph: Graph, weights: dict, *, seed: int, opset: int | None, fold_bn: bool, dtype: str,
                  verify: bool, path: str | None, progress=None, inference: bool = False):
    """ir.Graph -> ONNX, self-checked (unless not ``verify``); called by api.Network.compile.

    In memory where ``path`` is None: returns (the whole onnx.ModelProto, []). Else streamed to
    ``path``, one tensor in memory at a time: returns (the model without its initializers, the
    paths written), with ``progress(done, total)`` called as weight bytes are written. Weights come
    from ``weights`` (name -> float32 array, see weights.files.load_weights) where given, else from
    the seeded initialisation; ``opset`` None is emit's default, the one place it is chosen.
    ``dtype`` float16 stores and computes in half precision (inputs and outputs stay float32).
    Only what the outputs need is compiled; ``inference`` leaves out the outputs only training
    uses (`output train`) and what only they need.
    """
    from cnndsl.onnx import emit
    from cnndsl.weights.seeded import fillers

    graph = graph.pruned(inference)
    check_fits(graph, path, dtype)
    fill, parts = fillers(seed, weights)
    model, deferred = emit.build(graph, seed=seed, opset=opset or emit.DEFAULT_OPSET, fill=fill, parts=parts,
                                 fold_bn=fold_bn, dtype=dtype)
    if verify:
        emit.verify(model, graph, deferred)
    if path is None:
        emit.materialize(model, deferred)
        return model, []
    return model, _write(model, deferred, path, progress)


def _write(model, weights, path: str, progress=None) -> list[str]:
    """Publish the model at ``path`` (cnndsl.io), with its external data beside it at ``path``.data
    when the weights pass protobuf's limit (published first, so the model never names missing data).
    Returns the paths written: the model, then its external data if any."""
    from cnndsl.io import publish
    from cnndsl.onnx import protowire

    path = os.path.abspath(path)
    size = sum(w.nbytes for w in weights)
    external = size >= PROTOBUF_LIMIT
    data_path = path + ".data"
    with publish(lambda exc: CompileError(f"cannot write {path}: {exc.strerror}", path=path)) as pub:
        data_file = pub.file(data_path) if external else None
        with _open_output(pub.file(path), 0 if external else size) as out:
            if data_file:
                with _open_output(data_file, size) as data:
                    protowire.write(model, weights, out, data, os.path.basename(data_path), progress)
            else:
                protowire.write(model, weights, out, progress=progress)
    return [path, data_path] if external else [path]


def _open_output(path: str, size_hint: int = 0):
    """Where outputs are opened (a seam for the failure-injection tests)."""
    return open_output(path, size_hint)
