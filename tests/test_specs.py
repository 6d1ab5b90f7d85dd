"""Every shipped spec: checks, compiles, passes ONNX's checker and strict shape inference,
loads and runs in onnxruntime with our shapes, and its initializers add up to our counts."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import GOLDEN, SPECS

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
    """One compile per spec, in memory, then four independent checks of it. (The big ones are
    compiled nowhere else; compiling them to a shared file instead measured no faster.)"""
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
    produced = {out for n in checked_model.graph.node for out in n.output}
    # every layer whose value is an ONNX value of its own name (layers that emit nothing, such as
    # dropout, pass their input on; the last one is "output") has exactly our shape
    ours = [n for n in nodes[:-1] if n.name in produced]
    assert len(ours) >= len(nodes) // 2
    for node in ours:  # the batch stays symbolic (ONNX's inference renames it after a Resize with axes)
        assert shapes[node.name][1:] == node.out_shape and isinstance(shapes[node.name][0], str), node.name
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
def test_reference_evaluator_agrees(name, compiled):
    """Any ONNX runtime: ONNX's own pure-Python evaluator agrees with onnxruntime."""
    from onnx.reference import ReferenceEvaluator

    net = cnndsl.load(SPECS / name)
    path = compiled(name.removesuffix(".cnn"))
    x = np.random.default_rng(1).standard_normal((2, *net.input_shape), dtype=np.float32)
    ours = Runner.from_model(str(path), device="cpu").run(x)
    ref = ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
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
