"""Attribute values as spec text: ONNX strings, float32 numbers written shortest, shapes."""

from __future__ import annotations

import numpy as np


def text_of(v) -> str:
    """An ONNX string attribute (bytes or str) as str."""
    return v.decode() if isinstance(v, bytes) else str(v)


def float_text(v: float) -> str:
    """The shortest text that reads back as the same float32 (`0.001`, `1e-6`)."""
    return np.format_float_positional(np.float32(v), unique=True, trim="-") if abs(v) >= 1e-4 or v == 0 else \
        np.format_float_scientific(np.float32(v), unique=True, trim="-").replace("e-0", "e-").replace("e+0", "e")


def dims_text(shape) -> str:
    """A shape as `NxCxHxW`, N for a symbolic axis."""
    if shape is None:
        return "an unknown shape"
    return "x".join(str(d) if isinstance(d, int) else "N" for d in shape)
