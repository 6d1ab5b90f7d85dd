"""Weights: seeded initialisation by a stated scheme, one independent stream per tensor name."""

from __future__ import annotations

import zlib

import numpy as np

from .ir import Param


def init_array(p: Param, seed: int) -> np.ndarray:
    """The float32 values of ``p`` for ``seed``.

    Schemes: ``he`` N(0, 2/fan_in) for weights feeding a relu-like activation; ``glorot``
    U(-a, a), a = sqrt(6/(fan_in+fan_out)) otherwise; biases and batchnorm shifts 0; batchnorm
    scales and running variances 1 (identity statistics); ``value`` for constant kernels.
    Each tensor draws from its own generator keyed by (seed, crc32(name)), so adding a layer
    never changes another layer's weights.
    """
    if p.init == "zeros":
        return np.zeros(p.shape, np.float32)
    if p.init == "ones":
        return np.ones(p.shape, np.float32)
    if p.init == "value":
        return np.asarray(p.value, np.float32).reshape(p.shape)
    rng = np.random.default_rng([seed, zlib.crc32(p.name.encode("utf-8"))])
    if p.init == "he":
        out = rng.standard_normal(p.shape, dtype=np.float32)
        out *= np.float32(np.sqrt(2.0 / p.fan_in))
        return out
    if p.init == "glorot":
        limit = np.float32(np.sqrt(6.0 / (p.fan_in + p.fan_out)))
        out = rng.random(p.shape, dtype=np.float32)
        out *= 2 * limit
        out -= limit
        return out
    raise ValueError(f"unknown init scheme {p.init!r} for {p.name}")  # pragma: no cover
