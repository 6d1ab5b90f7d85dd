"""A model's output as text: the top classes of a classifier, the classes of a segmentation's
pixels, or the values of a small output."""

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


def top_lines(y: np.ndarray, k: int, labels: list[str] | None = None) -> list[str]:
    """The ``k`` best classes of the first few samples of an N x classes output, with scores (and names)."""
    k = max(1, min(k, y.shape[1]))
    lines = []
    for i, row in enumerate(y[:SAMPLES_SHOWN]):
        order = np.argsort(-row, kind="stable")[:k]
        lines.append(f"sample {i}: top {k} of {y.shape[1]} classes")
        if labels:
            width = max(len(labels[c]) for c in order)
            lines += [f"  class {c:>5}  {labels[c]:<{width}}  score {row[c]: .6f}" for c in order]
        else:
            lines += [f"  class {c:>5}  score {row[c]: .6f}" for c in order]
    if y.shape[0] > SAMPLES_SHOWN:
        lines.append(f"({y.shape[0] - SAMPLES_SHOWN} more samples not shown)")
    return lines


def pixel_class_lines(y: np.ndarray, k: int, labels: list[str] | None = None) -> list[str]:
    """For an N x classes x H x W output of class scores: per sample, how many pixels each class
    wins (the arg-max over the classes), the ``k`` largest first."""
    n, classes, h, w = y.shape
    lines = []
    for i, scores in enumerate(y[:SAMPLES_SHOWN]):
        winners = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=0)
        counts = np.bincount(winners.ravel(), minlength=classes)
        order = [c for c in np.argsort(-counts, kind="stable") if counts[c]]
        lines.append(f"sample {i}: the arg-max class of each of {h * w:,} pixels ({h}x{w}), {classes} classes")
        named = {c: f"  {labels[c]:<{max(len(labels[d]) for d in order[:k])}}" if labels else "" for c in order[:k]}
        lines += [f"  class {c:>5}{named[c]}  {counts[c]:>{len(f'{h * w:,}')},} pixels  {counts[c] / (h * w):6.1%}"
                  for c in order[:k]]
        if len(order) > k:
            rest = int(counts[order[k:]].sum())
            lines.append(f"  ({len(order) - k} more classes: {rest:,} pixels)")
    if n > SAMPLES_SHOWN:
        lines.append(f"({n - SAMPLES_SHOWN} more samples not shown)")
    return lines


def range_line(y: np.ndarray) -> str:
    """The range and mean of an output too large to print (an image: an autoencoder's)."""
    finite = y[np.isfinite(y)]
    if not finite.size:
        return "no finite values"
    return f"values {float(finite.min()):.4g} .. {float(finite.max()):.4g}, mean {float(finite.mean()):.4g}"
