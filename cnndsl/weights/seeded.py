"""Weights: seeded initialisation by a stated scheme, one independent stream per tensor name."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

from cnndsl.model.ir import Param


def fillers(seed: int, given: dict[str, np.ndarray] | None = None):
    """(fill, parts) for onnx.emit.build: each tensor's values are ``given[name]`` where given, else
    seeded (``init_array``); ``parts`` streams a large seeded tensor in chunks (``init_parts``)."""
    given = given or {}

    def fill(p: Param) -> np.ndarray:
        return given[p.name] if p.name in given else init_array(p, seed)

    def parts(p: Param) -> Iterator[np.ndarray] | None:
        return None if p.name in given else init_parts(p, seed)

    return fill, parts


def init_array(p: Param, seed: int) -> np.ndarray:
    """The float32 values of ``p`` for ``seed``.

    Schemes: ``he`` (uniform) U(-a, a), a = sqrt(6/fan_in), variance 2/fan_in, for weights feeding a
    relu-like activation; ``glorot`` U(-a, a), a = sqrt(6/(fan_in+fan_out)) otherwise; biases and
    batchnorm shifts 0; batchnorm scales and running variances 1 (identity statistics); ``value``
    for constant kernels.
    Each tensor draws from its own generators keyed by (seed, crc32(name), chunk), so adding a
    layer never changes another layer's weights.
    """
    if p.init == "zeros":
        return np.zeros(p.shape, np.float32)
    if p.init == "ones":
        return np.ones(p.shape, np.float32)
    if p.init == "value":
        return np.asarray(p.value, np.float32).reshape(p.shape)
    limit = _limit(p)
    if limit is not None:
        return _uniform(p, seed, limit)
    raise ValueError(f"unknown init scheme {p.init!r} for {p.name}")  # pragma: no cover


CHUNK = 1 << 22  # values per random stream: large tensors are drawn in chunks, two at a time


def _limit(p: Param) -> float | None:
    if p.init == "he":
        return float(np.sqrt(6.0 / p.fan_in))
    if p.init == "glorot":
        return float(np.sqrt(6.0 / (p.fan_in + p.fan_out)))
    return None


def _filler(p: Param, seed: int, limit: float):
    """fill(part, i): chunk i of ``p``'s U(-limit, limit) values into ``part``, from its own stream
    keyed by (seed, crc32(name), i), so the values never depend on threads or chunking order."""
    key = zlib.crc32(p.name.encode("utf-8"))
    scale, shift = np.float32(2 * limit), np.float32(limit)

    def fill(part: np.ndarray, i: int) -> np.ndarray:
        np.random.default_rng([seed, key, i]).random(dtype=np.float32, out=part)
        part *= scale
        part -= shift
        return part

    return fill


def _uniform(p: Param, seed: int, limit: float) -> np.ndarray:
    """U(-limit, limit) as float32, drawn in place, large tensors in chunks on two threads
    (numpy's generators release the GIL)."""
    out = np.empty(p.size, np.float32)
    fill = _filler(p, seed, limit)
    chunks = -(-p.size // CHUNK)
    if chunks <= 1:
        fill(out, 0)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnndsl-draw") as pool:
            list(pool.map(lambda i: fill(out[i * CHUNK:(i + 1) * CHUNK], i), range(chunks)))
    return out.reshape(p.shape)


def init_parts(p: Param, seed: int) -> Iterator[np.ndarray] | None:
    """``init_array(p, seed)`` flattened, as consecutive chunks of CHUNK values, for tensors of more
    than one chunk with a random scheme; None for the rest (make them whole).

    Two chunks are drawn ahead on worker threads into three reused buffers, so writing a 400 MB
    tensor holds 48 MB, not 400, and touches no fresh memory after the first chunks. A chunk is
    valid until the next one is asked for.
    """
    limit = _limit(p)
    if limit is None or p.size <= CHUNK:
        return None
    return _parts(p, seed, limit)


def _parts(p: Param, seed: int, limit: float) -> Iterator[np.ndarray]:
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    fill, chunks, size = _filler(p, seed, limit), -(-p.size // CHUNK), p.size
    buffers = [np.empty(CHUNK, np.float32) for _ in range(min(3, chunks))]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnndsl-draw") as pool:
        def submit(i: int):
            part = buffers[i % len(buffers)][:min(CHUNK, size - i * CHUNK)]
            return pool.submit(fill, part, i)

        pending = deque(submit(i) for i in range(min(2, chunks)))
        for i in range(chunks):
            part = pending.popleft().result()
            if i + 2 < chunks:  # into the buffer of chunk i - 1, which the caller is done with
                pending.append(submit(i + 2))
            yield part


IGNORED_SUFFIXES = (".num_batches_tracked",)  # torch batchnorm bookkeeping, not a weight


def match_weights(graph, tensors: dict[str, np.ndarray], path: str, strict: bool = True):
    """Match file tensors to the spec's weights by name, like load_state_dict(strict=True).

    Returns (name -> float32 array, notes). Every missing, unexpected or wrongly shaped name is
    reported at once, with expected and found shapes and the closest spec names. NaN or infinite
    values are an error when strict, a warning otherwise.
    """
    from cnndsl.errors import WeightsError, did_you_mean
    from cnndsl.lang.show import fmt_shape
    from cnndsl.model.ir import CONSTANT

    expected = {p.name: p for p in graph.params() if p.role != CONSTANT}
    missing = [n for n in expected if n not in tensors]
    unexpected = [n for n in tensors if n not in expected and not n.endswith(IGNORED_SUFFIXES)]
    wrong = [n for n in expected if n in tensors and tuple(tensors[n].shape) != expected[n].shape]
    problems = []
    for n in wrong:
        problems.append(f"  shape mismatch  {n}: spec {fmt_shape(expected[n].shape)}, "
                        f"file {fmt_shape(tensors[n].shape) or 'scalar'}")
    if strict:
        problems += [f"  missing         {n} ({fmt_shape(expected[n].shape)})" for n in missing]
        for n in unexpected:
            near = did_you_mean(n, [m for m in missing] or list(expected))
            problems.append(f"  unexpected      {n} ({fmt_shape(tensors[n].shape) or 'scalar'})"
                            + (f": {near}" if near else ""))
    if problems:
        raise WeightsError(f"{len(problems)} weight{'s do' if len(problems) > 1 else ' does'} not match "
                           f"network '{graph.name}':\n" + "\n".join(problems), path=path,
                           hint="`cnndsl weights SPEC` lists the names and shapes the spec expects"
                           + ("" if strict else "") + ("; --no-strict loads the names that match"
                                                       if strict and not wrong else ""))
    notes, loaded, converted = [], {}, {}
    for n in expected:
        if n not in tensors:
            continue
        arr = tensors[n]
        if arr.dtype.metadata and arr.dtype.metadata.get("name") == "bfloat16":
            from cnndsl.weights.files import bf16_to_f32

            converted["bfloat16"] = converted.get("bfloat16", 0) + 1
            arr = bf16_to_f32(arr)
        elif arr.dtype != np.float32:
            if not np.issubdtype(arr.dtype, np.floating):
                raise WeightsError(f"tensor '{n}' has dtype {arr.dtype}; weights must be floating point", path=path)
            converted[str(arr.dtype)] = converted.get(str(arr.dtype), 0) + 1
            arr = arr.astype(np.float32)
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad and strict:
            raise WeightsError(f"tensor '{n}' has {bad:,} NaN or infinite values", path=path,
                               hint="--no-strict loads it anyway, with a warning")
        if bad:
            notes.append(f"warning: tensor '{n}' has {bad:,} NaN or infinite values")
        loaded[n] = arr
    for dtype, count in converted.items():
        notes.append(f"note: converted {count} tensor{'s' if count > 1 else ''} from {dtype} to float32")
    if not strict:
        if missing:
            notes.append(f"note: {len(missing)} weights not in the file keep their seeded values")
        if unexpected:
            notes.append(f"note: ignored {len(unexpected)} tensors the spec does not have")
    return loaded, notes
