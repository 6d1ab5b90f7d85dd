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
    batchnorm shifts 0; batchnorm scales and running variances 1 (identity statistics); ``fill``:
    every value ``p.value`` (a layer scale's start); ``value`` for constant kernels.
    Each tensor draws from its own generators keyed by (seed, crc32(name), chunk), so adding a
    layer never changes another layer's weights.
    """
    if p.init == "zeros":
        return np.zeros(p.shape, np.float32)
    if p.init == "ones":
        return np.ones(p.shape, np.float32)
    if p.init == "fill":
        return np.full(p.shape, p.value, np.float32)
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
