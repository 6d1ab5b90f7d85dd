"""Compiling with guards: refuse what cannot fit before allocating; write outputs atomically."""

from __future__ import annotations

import os
import shutil
import tempfile

from .errors import CompileError
from .ir import Graph
from .report import human_bytes, totals

PROTOBUF_LIMIT = 2 ** 31 - 2 ** 26  # keep well under protobuf's 2 GiB: beyond, use external data
PEAK_FACTOR = 3  # arrays + tensor bytes + serialised buffer, at worst, while compiling


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(graph: Graph) -> None:
    """Refuse, before allocating anything, a model whose weights cannot fit in memory here."""
    t = totals(graph)
    free = available_memory()
    need = t.weight_bytes * PEAK_FACTOR
    if free is None or need <= free:
        return
    biggest = max(graph.nodes, key=lambda n: sum(p.size for p in n.params))
    size = sum(p.size for p in biggest.params)
    notes = (((f"the largest layer, '{biggest.name}', alone holds {size:,} parameters "
               f"({human_bytes(size * 4)})"), biggest.span),)
    raise CompileError(
        f"cannot compile {graph.name} here: its {t.params + t.buffers + t.constants:,} float32 weights take "
        f"{human_bytes(t.weight_bytes)}, and compiling needs about {human_bytes(need)}, but this machine has "
        f"{human_bytes(free)} available", None,
        "counting and checking need no weights: `cnndsl params` and `cnndsl summary` work on it", notes,
        path=graph.path)


def check_run_fits(graph: Graph, batch: int) -> None:
    """Refuse, before running, a batch whose largest activations cannot fit in memory here."""
    free = available_memory()
    biggest = max(graph.nodes, key=lambda n: n.out_elements)
    widest = max(sum(graph.nodes[i].out_elements if i >= 0 else _count(graph.input_shape) for i in n.inputs)
                 + n.out_elements for n in graph.nodes)
    need = (widest * batch + _count(graph.input_shape) * batch) * 4 + totals(graph).weight_bytes
    if free is None or need <= free:
        return
    raise CompileError(
        f"running {graph.name} on a batch of {batch} needs about {human_bytes(need)} of memory, but this machine "
        f"has {human_bytes(free)} available", None, "use a smaller --batch or a smaller input",
        ((f"the largest activation, '{biggest.name}', holds {biggest.out_elements:,} values per sample",
          biggest.span),), path=graph.path)


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def compile_model(graph: Graph, seed: int = 0, opset: int | None = None, weights: dict | None = None,
                  fold_bn: bool = False, verify: bool = True):
    """ir.Graph -> onnx.ModelProto, self-checked. Weights come from ``weights`` (name -> float32
    array, see weights.match_weights) where given, else from the seeded initialisation."""
    from . import emit
    from .weights import init_array

    check_fits(graph)
    weights = weights or {}

    def fill(p):
        return weights[p.name] if p.name in weights else init_array(p, seed)

    model = emit.to_onnx(graph, seed=seed, opset=opset or emit.DEFAULT_OPSET, fill=fill, fold_bn=fold_bn)
    if verify:
        emit.verify(model, graph)
    return model


def write_model(model, path: str) -> list[str]:
    """Write ``model`` to ``path`` atomically; large models get ``path + '.data'`` beside them.

    Everything is written into a temporary folder next to the target and renamed into place
    only when complete, so a failure or an interrupt leaves any existing file untouched.
    Returns the paths written: the model, then its external data if any.
    """
    import onnx

    path = os.path.abspath(path)
    folder, base = os.path.split(path)
    external = model.ByteSize() >= PROTOBUF_LIMIT if _small_enough_to_size(model) else True
    tmp = tempfile.mkdtemp(prefix=f".{base}.", dir=folder)
    try:
        staged = os.path.join(tmp, base)
        if external:
            onnx.save_model(model, staged, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=base + ".data", size_threshold=1024)
        else:
            _write_bytes(staged, model.SerializeToString())
        data = sorted(n for n in os.listdir(tmp) if n != base)
        for name in data + [base]:  # the external data first, so the model never points at nothing
            os.replace(os.path.join(tmp, name), os.path.join(folder, name))
        return [path] + [os.path.join(folder, n) for n in data]
    except OSError as exc:
        raise CompileError(f"cannot write {path}: {exc.strerror}", path=path) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _small_enough_to_size(model) -> bool:
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data)
        if total >= PROTOBUF_LIMIT:
            return False
    return True
