"""Every shipped spec: checks, compiles, passes ONNX's checker and strict shape inference,
loads and runs in onnxruntime with our shapes, and its initializers add up to our counts."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import GOLDEN, SPECS

import cnndsl
from cnndsl.model.ir import BUFFER, CONSTANT, TRAINABLE
from cnndsl.onnx import emit
from cnndsl.runtime.run import Runner

ALL = sorted(p.name for p in SPECS.glob("*.cnn"))
TOO_BIG = {"mlp_12mp.cnn"}  # counted and checked, never compiled (see test_cli)
COMPILABLE = [s for s in ALL if s not in TOO_BIG]
SMALL_MACS = 5e7  # small enough for ONNX's pure-Python reference evaluator


FULL_CHECK_BYTES = 100e6  # larger models are checked as a weight-free skeleton (same graph)


def _inferred_shapes(model):
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return {vi.name: tuple(d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim)
            for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}


@pytest.mark.parametrize("name", COMPILABLE)
def test_compiles_checks_itself_and_runs(name):
    """One compile per spec, then four independent checks of it."""
    net = cnndsl.load(SPECS / name)
    done = net.compile()
    model = done.model
    assert (model.opset_import[0].version, model.ir_version) == (emit.DEFAULT_OPSET,
                                                                  emit.ir_version_for(emit.DEFAULT_OPSET))
    assert (done.opset, done.ir_version, done.paths, done.bytes) == (emit.DEFAULT_OPSET, model.ir_version, (),
                                                                      model.ByteSize())

    # 1. ONNX's checker and strict shape inference give exactly our shapes
    checked_model = model if net.totals.weight_bytes < FULL_CHECK_BYTES else emit.skeleton(model)
    onnx.checker.check_model(checked_model, full_check=True)
    shapes = _inferred_shapes(checked_model)
    nodes = net.graph.nodes
    checked = 0
    for i, node in enumerate(nodes):
        key = "output" if i == len(nodes) - 1 else node.name
        if key in shapes:
            assert shapes[key] == ("N", *node.out_shape), node.name
            checked += 1
    assert checked >= len([n for n in nodes if n.kind not in ("dropout", "identity")]) - 1
    assert shapes["output"] == ("N", *net.output_shape)

    # 2. the initializers add up to our counts, role by role, and hold all their bytes
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    assert all(len(t.raw_data) == 4 * sizes[t.name] for t in model.graph.initializer)
    roles = {p.name: p.role for p in net.graph.params()}
    assert set(sizes) == set(roles)
    for role, expected in ((TRAINABLE, net.totals.params), (BUFFER, net.totals.buffers),
                           (CONSTANT, net.totals.constants)):
        assert sum(n for k, n in sizes.items() if roles[k] == role) == expected
    assert not [n for n in model.graph.node if n.op_type in ("Identity", "Dropout")]

    # 3. onnxruntime loads it and its real output shape is ours
    runner = Runner.from_model(model.SerializeToString(), device="cpu")
    assert runner.provider == "CPUExecutionProvider"
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape), dtype=np.float32)
    y = runner.run(x)
    assert y.shape == (2, *net.output_shape)
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", [s for s in COMPILABLE if cnndsl.load(SPECS / s).totals.macs < SMALL_MACS])
def test_reference_evaluator_agrees(name):
    """Any ONNX runtime: ONNX's own pure-Python evaluator agrees with onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    net = cnndsl.load(SPECS / name)
    model = net.to_onnx(seed=0)
    x = np.random.default_rng(1).standard_normal((2, *net.input_shape), dtype=np.float32)
    ours = Runner.from_model(model.SerializeToString(), device="cpu").run(x)
    ref = ReferenceEvaluator(model).run(None, {"input": x})[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


@pytest.mark.parametrize("name", ALL)
def test_golden_summary(name, update_goldens):
    """The whole per-layer summary of each spec, reviewed in diffs (--update-goldens rewrites)."""
    from cnndsl.views import report

    net = cnndsl.load(SPECS / name)
    text = net.summary() + "\n" + json.dumps(report.as_json(f"specs/{name}", net.graph), indent=2) + "\n"
    path = GOLDEN / (name[:-4] + ".txt")
    if update_goldens or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_same_seed_same_bytes_different_seed_different_weights():
    net = cnndsl.load(SPECS / "lenet5.cnn")
    a = net.to_onnx(seed=3).SerializeToString()
    b = cnndsl.load(SPECS / "lenet5.cnn").to_onnx(seed=3).SerializeToString()
    c = net.to_onnx(seed=4).SerializeToString()
    assert a == b and a != c


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


def test_weight_init_schemes():
    """He for weights feeding relu (through batchnorm too), Glorot otherwise; BN identity statistics."""
    net = cnndsl.parse("input 3x8x8\nconv 64 3x3 bias=false\nbatchnorm\nrelu\nconv 64 3x3\nflatten\ndense 10\n")
    inits = {p.name: p.init for p in net.graph.params()}
    assert inits == {"0.weight": "he", "1.weight": "ones", "1.bias": "zeros", "1.running_mean": "zeros",
                     "1.running_var": "ones", "3.weight": "glorot", "3.bias": "zeros", "5.weight": "glorot",
                     "5.bias": "zeros"}
    model = net.to_onnx(seed=0)
    w = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    assert abs(w["0.weight"].std() - np.sqrt(2 / 27)) < 0.02
    assert np.abs(w["3.weight"]).max() <= np.sqrt(6 / (64 * 9 + 64 * 9))
