"""cnndsl's ONNX models compute what the PyTorch models they mirror compute, weights loaded by name.

Needs torch and torchvision (and safetensors), which are not cnndsl's dependencies: skipped where
they are missing (as in CI). Run with a venv that has them:

    python -m pytest tests/test_torch_equivalence.py

Besides a few single-model specs, one model of each family spec (specs whose network or variants
are torchvision models): the one with the fewest multiply-accumulates (counts.json), to keep the
run short; a variant where that is not the network, so that variants are loaded as well.
"""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("safetensors")

from helpers import FIXTURES, ROOT, SPECS  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))

from equivalence import TOLERANCE, compare, families, locate  # noqa: E402

COUNTS = json.loads((FIXTURES / "torchvision_variants" / "counts.json").read_text())
FAMILIES = families()
CHEAPEST = [min(names, key=lambda n: COUNTS[n]["macs"]) for names in FAMILIES.values()]
MODELS = ["lenet5", "zfnet", "resnet18", "googlenet_torchvision", *CHEAPEST]

# model-major order: equivalence.prepare caches the last model, its weights file and output.
CASES = [(name, fold) for name in MODELS for fold in (False, True)]


def test_locate():
    assert locate("resnet18") == (SPECS / "resnet18.cnn", None)
    for path, names in FAMILIES.items():
        for name in names:
            assert locate(name)[0] == path, name
    with pytest.raises(LookupError, match="no spec"):
        locate("no_such_model")


@pytest.mark.parametrize(("name", "fold_bn"), CASES, ids=[f"{n}-{'fold-bn' if f else 'plain'}" for n, f in CASES])
def test_matches_torch(name, fold_bn):
    rel = compare(name, fold_bn=fold_bn)
    assert rel <= TOLERANCE, f"{name} (fold_bn={fold_bn}): max|onnx - torch| / max|torch| = {rel:.3g}"
