"""Specs that mirror a torchvision model name their weights exactly as its state_dict does.

tests/fixtures/torchvision/<spec>.json holds torchvision's {key: shape} (without
num_batches_tracked), written by tools/torchvision_keys.py from torchvision itself. This test needs
no torch: it checks the spec's parameter names and shapes, trainable and buffers, against the file.
"""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, SPECS

import cnndsl
from cnndsl.model.ir import CONSTANT

FIXTURES = ROOT / "tests" / "fixtures" / "torchvision"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def test_fixtures_present():
    assert CASES, f"no fixtures in {FIXTURES}"


@pytest.mark.parametrize("spec", CASES)
def test_names_and_shapes_match_torchvision(spec):
    expected = json.loads((FIXTURES / f"{spec}.json").read_text())
    net = cnndsl.load(SPECS / f"{spec}.cnn")
    got = {}
    for p in net.graph.params():
        if p.role == CONSTANT:
            continue
        assert p.name not in got, f"{spec}: {p.name} appears twice"
        got[p.name] = list(p.shape)
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = {k: (got[k], expected[k]) for k in sorted(set(got) & set(expected)) if got[k] != expected[k]}
    assert not (missing or unexpected or wrong), (
        f"{spec}: missing (in torchvision, not the spec) {missing[:10]}; unexpected (in the spec only) "
        f"{unexpected[:10]}; shape differs (spec, torchvision) {dict(list(wrong.items())[:10])}")
    assert got == expected
