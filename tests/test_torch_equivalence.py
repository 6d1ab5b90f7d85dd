"""cnndsl's ONNX models compute what the PyTorch models they mirror compute, weights loaded by name.

Needs torch and torchvision (and safetensors), which are not cnndsl's dependencies: skipped where
they are missing (as in CI). Run with a venv that has them:

    python -m pytest tests/test_torch_equivalence.py
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("safetensors")

from helpers import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))

from equivalence import TOLERANCE, compare  # noqa: E402

# spec-major order: equivalence.prepare caches the last spec's model, weights file and output.
CASES = [(spec, fold) for spec in ["lenet5", "zfnet", "resnet18", "googlenet_torchvision"] for fold in (False, True)]


@pytest.mark.parametrize(("spec", "fold_bn"), CASES, ids=[f"{s}-{'fold-bn' if f else 'plain'}" for s, f in CASES])
def test_matches_torch(spec, fold_bn):
    rel = compare(spec, fold_bn=fold_bn)
    assert rel <= TOLERANCE, f"{spec} (fold_bn={fold_bn}): max|onnx - torch| / max|torch| = {rel:.3g}"
