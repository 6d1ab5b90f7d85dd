"""Lowering to ONNX (cnndsl/onnx/emit.py): the opsets it writes, the model's metadata and
dynamic batch axis, and batchnorm folding."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SPECS

import cnndsl
from cnndsl.onnx import emit
from cnndsl.runtime.run import Runner


def test_metadata_and_dynamic_batch():
    net = cnndsl.load(SPECS / "lenet5.cnn")
    model = net.to_onnx()
    props = {p.key: p.value for p in model.metadata_props}
    assert props["cnndsl.name"] == "lenet5"
    assert props["cnndsl.spec"] == (SPECS / "lenet5.cnn").read_text()
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "N"


@pytest.mark.parametrize("opset", range(emit.MIN_OPSET, emit.MAX_OPSET + 1))
def test_every_supported_opset_loads_in_installed_onnxruntime(opset):
    net = cnndsl.parse("input 3x16x16\nconv 4 3x3 pad=same relu\nmaxpool 2x2 ceil\navgpool 3x3 stride=1 pad=1\n"
                       "batchnorm\nlrn 3\nglobalavgpool\nflatten\ndense 5 relu6\nsoftmax\n")
    model = net.to_onnx(opset=opset)
    y = Runner.from_model(model.SerializeToString(), device="cpu").run(np.ones((1, 3, 16, 16), np.float32))
    assert y.shape == (1, 5)


BN_NET = """input 3x12x12
conv1: conv 8 3x3 pad=1 bias=false
bn1: batchnorm eps=0.001
relu
conv2: conv 8 3x3 pad=1
bn2: batchnorm
residual { c: conv 8 3x3 pad=1; b: batchnorm }
globalavgpool
flatten
fc: dense 4
"""


def test_fold_bn_is_numerically_equivalent():
    net = cnndsl.parse(BN_NET)
    rng = np.random.default_rng(5)
    state = {}
    for p in net.graph.params():
        arr = rng.standard_normal(p.shape).astype(np.float32)
        if p.name.endswith("running_var"):
            arr = rng.uniform(0.5, 2.0, p.shape).astype(np.float32)
        state[p.name] = arr
    plain = net.to_onnx(weights=state)
    folded = net.to_onnx(weights=state, fold_bn=True)
    assert [n.op_type for n in folded.graph.node].count("BatchNormalization") == 0
    names = {t.name for t in folded.graph.initializer}
    assert "conv1.bias" in names and "bn1.weight" not in names
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    a = Runner.from_model(plain.SerializeToString(), device="cpu").run(x)
    b = Runner.from_model(folded.SerializeToString(), device="cpu").run(x)
    assert np.abs(a - b).max() / np.abs(a).max() < 1e-5
