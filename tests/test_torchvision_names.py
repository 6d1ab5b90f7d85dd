"""Specs that mirror a torchvision model name their weights exactly as its state_dict does.

tests/fixtures/torchvision/<spec>.json holds torchvision's {key: shape} (without
num_batches_tracked), written by tools/torchvision_keys.py from torchvision itself. This test needs
no torch: it checks the spec's parameter names and shapes, trainable and buffers, against the file.
"""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, SPECS, assert_weights_match

import cnndsl

FIXTURES = ROOT / "tests" / "fixtures" / "torchvision"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def test_fixtures_present():
    assert CASES, f"no fixtures in {FIXTURES}"


@pytest.mark.parametrize("spec", CASES)
def test_names_and_shapes_match_torchvision(spec):
    expected = json.loads((FIXTURES / f"{spec}.json").read_text())
    assert_weights_match(spec, cnndsl.load(SPECS / f"{spec}.cnn").graph, expected)


# A ConvNeXt block and head (torchvision's CNBlock and classifier, channels 8) written with the layer
# kinds it needs, and the {name: shape} torch gives the same modules (nn.Conv2d, nn.LayerNorm,
# nn.Linear, the block's own nn.Parameter layer_scale; checked once against torch 2.14 /
# torchvision 0.29.1 by hand, not at test time). torchvision calls the block's Sequential `block`,
# a keyword of the language, so it is `blk` here.
CONVNEXT_BLOCK = """input 8x4x4
blk: {
  dw: conv 8 7x7 pad=3 groups=8
  norm: layernorm eps=1e-6
  pw: linear 32
  gelu
  pw2: linear 8
  layer_scale: layerscale
  stochastic_depth: droppath 0.1
}
avgpool: globalavgpool
classifier: { layernorm eps=1e-6; flatten; dense 10 }
"""
CONVNEXT_BLOCK_TORCH = {
    "blk.dw.weight": [8, 1, 7, 7], "blk.dw.bias": [8],
    "blk.norm.weight": [8], "blk.norm.bias": [8],
    "blk.pw.weight": [32, 8], "blk.pw.bias": [32],
    "blk.pw2.weight": [8, 32], "blk.pw2.bias": [8],
    "blk.layer_scale": [8, 1, 1],
    "classifier.0.weight": [8], "classifier.0.bias": [8],
    "classifier.2.weight": [10, 8], "classifier.2.bias": [10],
}


def test_convnext_block_names_and_shapes_match_torch():
    net = cnndsl.parse(CONVNEXT_BLOCK)
    got = {p.name: list(p.shape) for p in net.graph.params()}
    assert got == CONVNEXT_BLOCK_TORCH
    assert {p.role for p in net.graph.params()} == {"trainable"}
    layer_scale = next(p for p in net.graph.params() if p.name == "blk.layer_scale")
    assert (layer_scale.init, layer_scale.value) == ("fill", 1e-6)  # torch.ones(dim, 1, 1) * 1e-6
