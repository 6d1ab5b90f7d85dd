"""The model zoo: every variant of every family spec against torchvision 0.29.1, without torch.

tests/fixtures/torchvision_variants/ holds, for each torchvision classification model, its
state_dict names and shapes (<name>.json) and its counts (counts.json: input, trainable parameters,
buffers, and MACs = FlopCounterMode's FLOPs / 2 for one sample), written by
``python tools/torchvision_keys.py --variants --counts`` from torchvision itself. A spec takes part
through its names: the network's own (its default variant) and its `variant` lines; each name that
is a torchvision model must match it exactly, names and shapes, parameters, buffers and MACs.

tests/fixtures/segmentation/ does the same for the encoder-decoders and the networks with several
outputs (``python tools/torchvision_keys.py --segmentation``): torchvision's FCN, DeepLabv3, LR-ASPP
and GoogLeNet with its auxiliary heads, and tools/reference_models.py's U-Net and autoencoder. Their
counts also give the output shapes, and, for GoogLeNet, the MACs in training (with the auxiliary
heads) besides those of inference.
"""

from __future__ import annotations

import json

import pytest
from helpers import FIXTURES, SPECS, assert_weights_match

import cnndsl
from cnndsl.lang.parse import parse

ZOO = FIXTURES / "torchvision_variants"
DENSE = FIXTURES / "segmentation"
COUNTS = json.loads((ZOO / "counts.json").read_text())
DENSE_COUNTS = json.loads((DENSE / "counts.json").read_text())


def _cases(counts: dict):
    cases = []
    for path in sorted(SPECS.glob("*.cnn")):
        spec = parse(path.read_text(encoding="utf-8"), str(path))
        names = [(spec.name, None)] + [(v.name, v.name) for v in spec.variants]
        cases += [pytest.param(path, variant, name, id=name) for name, variant in names if name in counts]
    return cases


CASES = _cases(COUNTS)
DENSE_CASES = _cases(DENSE_COUNTS)


def test_the_zoo_has_specs():
    assert len(CASES) >= 1


def _matches(path, variant, name, want: dict, folder):
    """The network of ``variant``: its name, input, counts and weights as the fixture in ``folder`` has them."""
    net = cnndsl.load(path, variant)
    assert net.graph.name == name
    assert list(net.input_shape) == want["input"]
    t = net.totals
    assert (t.params, t.buffers, t.macs) == (want["params"], want["buffers"], want["macs"]), name
    assert_weights_match(name, net.graph, json.loads((folder / f"{name}.json").read_text()))
    return net


@pytest.mark.parametrize("path, variant, name", CASES)
def test_variant_matches_torchvision(path, variant, name):
    _matches(path, variant, name, COUNTS[name], ZOO)


def test_every_torchvision_classification_cnn_has_a_spec():
    """Every model in the fixtures (each CNN torchvision ships for classification) is a spec's
    network or one of its variants."""
    covered = {name for _, _, name in (case.values for case in CASES)}
    assert sorted(set(COUNTS) - covered) == []


@pytest.mark.parametrize("path, variant, name", DENSE_CASES)
def test_dense_and_multi_output_networks_match_their_reference(path, variant, name):
    want = DENSE_COUNTS[name]
    net = _matches(path, variant, name, want, DENSE)
    assert net.totals.training_macs == want.get("macs_train", want["macs"])
    assert [list(net.graph.shape_of(o.index)) for o in net.graph.output_list(inference=True)] == want["outputs"]
    if "outputs_train" in want:
        assert len(net.graph.output_list()) == len(want["outputs_train"])


def test_every_dense_reference_has_a_spec():
    covered = {name for _, _, name in (case.values for case in DENSE_CASES)}
    assert sorted(set(DENSE_COUNTS) - covered) == []
