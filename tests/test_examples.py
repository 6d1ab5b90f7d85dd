"""The course's worked examples, exactly: convolution, padding, stride, max pooling, filters; the
numbers onnxruntime computes and the sizes cnndsl works out before compiling."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SPECS

import cnndsl
from cnndsl.model.ir import CONSTANT

IMAGE = np.array([[2, 9, 11, 22, 42], [12, 43, 2, 0, 65], [9, 87, 65, 2, 90],
                  [21, 21, 44, 7, 2], [45, 2, 21, 2, 0]], np.float32)
KERNEL = "[[0, 0, 1], [1, 0, 0], [0, 0, 1]]"


def _correlate(image, kernel, pad, stride):
    """A tiny reference: zero-pad, slide, multiply, sum (cross-correlation)."""
    x = np.pad(image, pad)
    k = np.array(kernel, np.float64)
    n = (x.shape[0] - 3) // stride + 1
    return np.array([[np.sum(x[i * stride:i * stride + 3, j * stride:j * stride + 3] * k) for j in range(n)]
                     for i in range(n)])


def _run(text, x):
    out, provider = cnndsl.parse(text).run(x[None, None], device="cpu")
    assert provider == "CPUExecutionProvider"
    return out[0, 0]


def test_worked_example_exact():
    net = cnndsl.load(SPECS / "conv_example.cnn")
    out, _ = net.run(IMAGE[None, None], device="cpu")
    assert out[0, 0].tolist() == [[88, 67, 134], [55, 94, 132], [107, 25, 134]]


@pytest.mark.parametrize("options, pad, stride, size", [
    ("", 0, 1, 3),
    ("pad=same", 1, 1, 5),
    ("pad=1", 1, 1, 5),
    ("pad=1 stride=2", 1, 2, 3),
    ("pad=same stride=2", 1, 2, 3),
])
def test_padding_and_stride(options, pad, stride, size):
    out = _run(f"input 1x5x5\nfixedconv {KERNEL} {options}\n", IMAGE)
    assert out.shape == (size, size)
    np.testing.assert_array_equal(out, _correlate(IMAGE, eval(KERNEL), pad, stride))


def test_max_pool_example():
    x = np.array([[8, 5, 2, 7], [1, 6, 0, 3], [2, 4, 7, 1], [5, 1, 8, 0]], np.float32)
    assert _run("input 1x4x4\nmaxpool 2x2 stride=2\n", x).tolist() == [[8, 7], [5, 8]]


def test_filter_bank_one_map_per_filter():
    net = cnndsl.load(SPECS / "filters.cnn")
    assert net.output_shape == (6, 64, 64)
    assert net.totals.params == 0 and net.totals.constants == 6 * 9
    x = np.zeros((1, 1, 64, 64), np.float32)
    x[0, 0, :, 32:] = 1.0  # a vertical edge
    out, _ = net.run(x, device="cpu")
    np.testing.assert_array_equal(out[0, 0], x[0, 0])  # identity
    assert np.all(out[0, 2, 1:-1, 31] == -4) and np.all(out[0, 2, 1:-1, 32] == -4)  # Sobel left sees it
    assert np.all(out[0, 3, 1:-1, 1:-1] == 0)  # Sobel bottom does not
    np.testing.assert_allclose(out[0, 4], 0.5 * x[0, 0])  # darken
    np.testing.assert_allclose(out[0, 5], 1.5 * x[0, 0])  # lighten


# ---- sizes, worked out statically -------------------------------------------------------------------

@pytest.mark.parametrize("options, hw", [
    ("", (3, 3)),                   # no padding: 5-3+1
    ("pad=valid", (3, 3)),
    ("pad=same", (5, 5)),           # zero padding 1 keeps 5x5
    ("pad=1", (5, 5)),
    ("pad=same stride=2", (3, 3)),  # stride 2 on the padded image
    ("pad=1 stride=2", (3, 3)),
])
def test_worked_example_sizes(options, hw):
    net = cnndsl.parse(f"input 1x5x5\nconv 1 3x3 {options}\n")
    assert net.output_shape == (1,) + hw


def test_worked_example_spec():
    net = cnndsl.load(SPECS / "conv_example.cnn")
    assert net.output_shape == (1, 3, 3)
    (node,) = net.graph.nodes
    assert node.name == "kernel"
    assert [(p.name, p.shape, p.role) for p in node.params] == [("kernel.weight", (1, 1, 3, 3), CONSTANT)]
    assert node.params[0].value == (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def test_course_maxpool_example_size():
    assert cnndsl.parse("input 1x4x4\nmaxpool 2x2 stride=2\n").output_shape == (1, 2, 2)
