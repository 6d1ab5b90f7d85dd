"""Matching a weights file's tensors to a spec's weights by name, like load_state_dict(strict=True).

Names and shapes are compared first, from the file's headers; only the tensors the spec expects,
with the shapes it expects, are then read (weights.arrays.Stored), converted to float32 and
checked for NaN. Names from the file are untrusted: they are printed escaped.
"""

from __future__ import annotations

import numpy as np

from cnndsl.errors import WeightsError, did_you_mean
from cnndsl.lang.show import fmt_shape, printable
from cnndsl.memory import ensure_fits
from cnndsl.model.ir import CONSTANT
from cnndsl.weights.arrays import ArrayFileError, Stored

IGNORED_SUFFIXES = (".num_batches_tracked",)  # torch batchnorm bookkeeping, not a weight
BFLOAT16 = np.dtype(np.uint16, metadata={"name": "bfloat16"})  # raw bfloat16 bits, converted here


def match_weights(graph, tensors: dict, path: str, strict: bool = True):
    """Returns (name -> float32 array, notes). ``tensors`` maps names to arrays or to Stored
    entries (read only if matched). Every missing, unexpected or wrongly shaped name is reported
    at once, with expected and found shapes and the closest spec names. NaN or infinite values
    are an error when strict, a warning otherwise."""
    expected = {p.name: p for p in graph.params() if p.role != CONSTANT}
    missing = [n for n in expected if n not in tensors]
    unexpected = [n for n in tensors if n not in expected and not n.endswith(IGNORED_SUFFIXES)]
    wrong = [n for n in expected if n in tensors and tuple(tensors[n].shape) != expected[n].shape]
    problems = [f"  shape mismatch  {n}: spec {fmt_shape(expected[n].shape)}, "
                f"file {fmt_shape(tensors[n].shape) or 'scalar'}" for n in wrong]
    if strict:
        problems += [f"  missing         {n} ({fmt_shape(expected[n].shape)})" for n in missing]
        for n in unexpected:
            near = did_you_mean(n, missing or list(expected))
            problems.append(f"  unexpected      {printable(n)} ({fmt_shape(tensors[n].shape) or 'scalar'})"
                            + (f": {near}" if near else ""))
    if problems:
        raise WeightsError(f"{len(problems)} weight{'s do' if len(problems) > 1 else ' does'} not match "
                           f"network '{graph.name}':\n" + "\n".join(problems), path=path,
                           hint="`cnndsl weights SPEC` lists the names and shapes the spec expects"
                           + ("; --no-strict loads the names that match" if strict and not wrong else ""))
    found = [n for n in expected if n in tensors]
    ensure_fits(sum(expected[n].size for n in found) * 4, lambda why: WeightsError(
        f"the weights cannot be loaded: {why}", path=path))
    loaded, notes, converted = {}, [], {}
    for n in found:
        arr, was = _float32(n, tensors[n], path)
        if was:
            converted[was] = converted.get(was, 0) + 1
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


def _float32(name: str, value, path: str) -> tuple[np.ndarray, str | None]:
    """The tensor as float32, and the dtype it was converted from (None if it was float32)."""
    try:
        arr = value.load() if isinstance(value, Stored) else np.asarray(value)
    except ArrayFileError as exc:
        raise WeightsError(str(exc), path=path) from None
    if arr.dtype.metadata and arr.dtype.metadata.get("name") == "bfloat16":
        return (arr.astype(np.uint32) << 16).view(np.float32), "bfloat16"  # bf16 bits: a float32's top half
    if arr.dtype == np.float32:
        return arr, None
    if not np.issubdtype(arr.dtype, np.floating):
        raise WeightsError(f"tensor '{name}' has dtype {arr.dtype}; weights must be floating point", path=path)
    return arr.astype(np.float32), str(arr.dtype)
