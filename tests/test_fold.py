"""The batchnorm-folding pass (cnndsl/onnx/fold.py): which pairs fold, the graph it returns, and
the folded arithmetic, on the checked graph before any ONNX is made."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SPECS

import cnndsl
from cnndsl.onnx import fold
from cnndsl.weights.seeded import init_array

CASES = [  # spec body, pairs folded, nodes left
    ("conv 8 3x3\nbatchnorm\nrelu\n", 1, 2),
    ("conv 8 3x3 bias=false\nbatchnorm\n", 1, 1),  # the batchnorm is the output
    ("batchnorm\nconv 8 3x3\n", 0, 2),  # nothing before the batchnorm to fold into
    ("conv 8 3x3\nrelu\nbatchnorm\n", 0, 3),  # not directly after the conv
    ("conv 4 1x1\nconcat { batchnorm; relu }\n", 0, 4),  # two branches read the conv
    ("conv 4 1x1\nresidual { batchnorm } shortcut { }\n", 0, 3),  # the conv has two readers
    ("fixedconv [[1, 0], [0, 1]]\nbatchnorm\n", 0, 2),  # a constant kernel takes no fold
    ("conv 4 3x3 relu\nbatchnorm\nconv 4 3x3\nbatchnorm\n", 1, 4),
    ("conv 8 3x3\nlayernorm\n", 0, 2),  # normalises by each sample's own statistics: no fixed affine
    ("conv 8 3x3\nlayerscale\n", 0, 2),  # a learned scale, left as it is
    ("linear 8\nbatchnorm\n", 0, 2),  # a per-pixel linear takes no fold
]


def _graph(body: str, channels: int = 3):
    return cnndsl.parse(f"input {channels}x8x8\n{body}").graph


@pytest.mark.parametrize("body, folded, left", CASES)
def test_which_pairs_fold(body, folded, left):
    graph = _graph(body, 1 if body.startswith("fixedconv") else 3)
    assert len(fold.pairs(graph)) == folded
    result = fold.fold(graph, lambda p: init_array(p, 0))
    assert len(result.graph.nodes) == left
    assert result.graph.output_shape == graph.output_shape
    assert all(j < i for i, n in enumerate(result.graph.nodes) for j in n.inputs)  # still topological
    assert not any(n.layer.folds_into_previous for i, n in enumerate(result.graph.nodes)
                   if n.inputs and n.inputs[0] >= 0 and result.graph.nodes[n.inputs[0]].layer.absorbs_affine
                   and len([m for m in result.graph.nodes if n.inputs[0] in m.inputs]) == 1)


def test_folding_leaves_the_checked_graph_alone():
    graph = _graph("conv 8 3x3\nbatchnorm\nrelu\n")
    before = [(n.name, n.inputs, len(n.params)) for n in graph.nodes]
    fold.fold(graph, lambda p: init_array(p, 0))
    assert [(n.name, n.inputs, len(n.params)) for n in graph.nodes] == before


def test_resnet18_folds_every_conv_batchnorm_pair_and_renumbers_inputs():
    graph = cnndsl.load(SPECS / "resnet18.cnn").graph
    result = fold.fold(graph, lambda p: init_array(p, 0))
    assert len(fold.pairs(graph)) == 20  # 17 convs in the body and stem, 3 projections
    assert len(result.graph.nodes) == len(graph.nodes) - 20
    assert not any(n.kind == "batchnorm" for n in result.graph.nodes)
    names = [n.name for n in result.graph.nodes]
    assert "layer2.0.downsample.0" in names and "layer2.0.downsample.1" not in names
    for n in result.graph.nodes:
        if n.kind == "conv":
            assert [p.name for p in n.params] == [n.name + ".weight", n.name + ".bias"]
            assert result.notes[n.name + ".bias"].startswith("after folding batchnorm")


def test_the_folded_values_compute_what_conv_then_batchnorm_computes():
    """y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta, per output channel."""
    graph = _graph("conv 4 1x1\nbatchnorm eps=0.001\n", channels=2)
    conv, bn = graph.nodes
    rng = np.random.default_rng(1)
    values = {p.name: rng.uniform(0.5, 2.0, p.shape).astype(np.float32) for p in graph.params()}
    result = fold.fold(graph, lambda p: values[p.name])
    (merged,) = result.graph.nodes
    w, b = (result.fill(p) for p in merged.params)
    x = rng.standard_normal(2)
    gamma, beta, mean, var = (values[p.name].astype(np.float64) for p in bn.params)
    plain = values[conv.params[0].name][:, :, 0, 0] @ x + values[conv.params[1].name]
    expected = gamma * (plain - mean) / np.sqrt(var + 0.001) + beta
    np.testing.assert_allclose(w[:, :, 0, 0] @ x + b, expected, rtol=1e-5)


def test_a_batchnorm_beyond_float16_is_refused_at_its_line():
    graph = _graph("conv 4 1x1\nrelu\nbatchnorm\n")
    bn = graph.nodes[-1]

    def fill(p):
        return np.full(p.shape, 1e5 if p.name.endswith(".weight") else 1.0, np.float32)  # scale ~1e5

    fold.check_half_range(bn, lambda p: np.ones(p.shape, np.float32))  # scale ~1: fine
    with pytest.raises(cnndsl.errors.CompileError, match="beyond float16's range") as info:
        fold.check_half_range(bn, fill)
    assert info.value.span.line == 4
