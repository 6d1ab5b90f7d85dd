"""The model zoo: every variant of every family spec against torchvision 0.29.1, without torch.

tests/fixtures/torchvision_variants/ holds, for each torchvision classification model, its
state_dict names and shapes (<name>.json) and its counts (counts.json: input, trainable parameters,
buffers, and MACs = FlopCounterMode's FLOPs / 2 for one sample), written by
``python tools/torchvision_keys.py --variants --counts`` from torchvision itself. A spec takes part
through its names: the network's own (its default variant) and its `variant` lines; each name that
is a torchvision model must match it exactly, names and shapes, parameters, buffers and MACs.
"""

from __future__ import annotations

import json

import pytest
from helpers import FIXTURES, SPECS, assert_weights_match

import cnndsl
from cnndsl.lang.parse import parse

ZOO = FIXTURES / "torchvision_variants"
COUNTS = json.loads((ZOO / "counts.json").read_text())


def _cases():
    cases = []
    for path in sorted(SPECS.glob("*.cnn")):
        spec = parse(path.read_text(encoding="utf-8"), str(path))
        names = [(spec.name, None)] + [(v.name, v.name) for v in spec.variants]
        cases += [pytest.param(path, variant, name, id=name) for name, variant in names if name in COUNTS]
    return cases


CASES = _cases()


def test_the_zoo_has_specs():
    assert len(CASES) >= 1


@pytest.mark.parametrize("path, variant, name", CASES)
def test_variant_matches_torchvision(path, variant, name):
    net = cnndsl.load(path, variant)
    want = COUNTS[name]
    assert net.graph.name == name
    assert list(net.input_shape) == want["input"]
    t = net.totals
    assert (t.params, t.buffers, t.macs) == (want["params"], want["buffers"], want["macs"]), name
    assert_weights_match(name, net.graph, json.loads((ZOO / f"{name}.json").read_text()))


def test_every_torchvision_classification_cnn_has_a_spec():
    """Every model in the fixtures (each CNN torchvision ships for classification) is a spec's
    network or one of its variants."""
    covered = {name for _, _, name in (case.values for case in CASES)}
    assert sorted(set(COUNTS) - covered) == []
