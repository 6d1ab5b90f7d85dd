"""A model's output as text: the top classes of a classifier, or the values of a small output."""

from __future__ import annotations

import numpy as np

SAMPLES_SHOWN = 4


def nonfinite(y: np.ndarray) -> int:
    """How many output values are NaN or infinite."""
    return int(np.size(y) - np.count_nonzero(np.isfinite(y)))


def value_lines(y: np.ndarray) -> list[str]:
    """Every value, map by map (integers shown as such), for outputs small enough to read."""
    whole = np.all(np.abs(y - np.round(y)) < 1e-4)
    shown = np.round(y).astype(np.int64) if whole else y
    lines = []
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        maps = list(np.ndindex(*y.shape[:-2])) if y.ndim > 2 else [()]
        for index in maps:
            if len(maps) > 1:
                lines.append(f"[{', '.join(map(str, index))}]")
            lines.append(str(shown[index]))
    return lines


def top_lines(y: np.ndarray, k: int) -> list[str]:
    """The ``k`` best classes of the first few samples of an N x classes output, with scores."""
    k = max(1, min(k, y.shape[1]))
    lines = []
    for i, row in enumerate(y[:SAMPLES_SHOWN]):
        order = np.argsort(-row, kind="stable")[:k]
        lines.append(f"sample {i}: top {k} of {y.shape[1]} classes")
        lines += [f"  class {c:>5}  score {row[c]: .6f}" for c in order]
    if y.shape[0] > SAMPLES_SHOWN:
        lines.append(f"({y.shape[0] - SAMPLES_SHOWN} more samples not shown)")
    return lines
