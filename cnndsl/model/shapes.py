"""Pure arithmetic shared by layer kinds: window output sizes, 'same' padding, adaptive pools."""

from __future__ import annotations

import math


def window_out(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
               dilation: int = 1, ceil: bool = False) -> int:
    """Output length of a sliding window along one axis (conv or pool).

    floor((in + pads - dilation*(k-1) - 1) / stride) + 1; in ceil mode the division rounds up,
    but a last window that would start inside the end padding is dropped (PyTorch, ONNX >= 19).
    May return a value <= 0: callers turn that into an error they can explain.
    """
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Zero padding (begin, end) that gives ceil(size / stride) outputs; extra padding goes at the end."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - size)
    return total // 2, total - total // 2


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """The [start, end) windows of PyTorch's adaptive pooling along one axis."""
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def adaptive_as_pool(size: int, out: int) -> tuple[int, int] | None:
    """(kernel, stride) of a plain pool equal to adaptive pooling, or None if windows are uneven.

    Closed form (no window list, so any size is instant): with size = s*out + r, the windows
    start at floor(i*size/out) = i*s for every i < out only when r <= 1; then r = 0 gives kernel
    s, and r = 1 gives kernel s + 1 (each window ends at i*s + s + 1). tests/test_layers.py checks
    this against ``adaptive_windows`` exhaustively for small sizes.
    """
    if out > size:
        return None
    if out == 1:
        return size, 1
    s, r = divmod(size, out)
    if r == 0:
        return s, s
    if r == 1:
        return s + 1, s
    return None
