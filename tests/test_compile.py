"""Compiling (cnndsl/onnx/compile.py): reproducible bytes, a file streamed to disk that equals the
model made in memory, and --dtype float16: half the bytes, the same network, float32 at the
edges, clear refusals. int8 is in test_quantize.py, the lowering itself in test_emit.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from helpers import SPECS
from onnx import TensorProto

import cnndsl
from cnndsl.runtime.run import Runner


@pytest.mark.parametrize("spec, fold_bn", [("lenet5", False), ("resnet18", True), ("googlenet", False)])
def test_float16_model_matches_float32(spec, fold_bn):
    net = cnndsl.load(SPECS / f"{spec}.cnn")
    full = net.to_onnx(seed=3, fold_bn=fold_bn)
    half = net.to_onnx(seed=3, fold_bn=fold_bn, dtype="float16")
    assert {t.data_type for t in half.graph.initializer} == {TensorProto.FLOAT16}
    assert sum(len(t.raw_data) for t in half.graph.initializer) * 2 == \
        sum(len(t.raw_data) for t in full.graph.initializer)
    assert {p.key: p.value for p in half.metadata_props}["cnndsl.dtype"] == "float16"
    x = np.random.default_rng(1).standard_normal((4, *net.graph.input_shape), dtype=np.float32)
    want = Runner.from_model(full.SerializeToString(), device="cpu").run(x)
    got = Runner.from_model(half.SerializeToString(), device="cpu").run(x)
    assert got.dtype == np.float32
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-2
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))


def test_compile_float16_from_the_command_line(tmp_path, cli):
    out = tmp_path / "lenet5.onnx"
    r = cli("compile", SPECS / "lenet5.cnn", "--dtype", "float16", "-o", out)
    assert r.exit_code == 0 and "float16" in r.stdout
    model = onnx.load(out)
    assert model.graph.node[0].op_type == "Cast" and model.graph.node[-1].op_type == "Cast"
    r = cli("run", out)
    assert r.exit_code == 0 and "output: 1x10" in r.stdout


def test_weights_beyond_float16_are_refused_by_name(tmp_path, cli):
    weights = tmp_path / "w.npz"
    net = cnndsl.load(SPECS / "lenet5.cnn")
    arrays = {p.name: np.zeros(p.shape, np.float32) for p in net.graph.params()}
    arrays["classifier.0.weight"][3, 4] = 1e6
    np.savez(weights, **arrays)
    out = tmp_path / "m.onnx"
    r = cli("compile", SPECS / "lenet5.cnn", "--weights", weights, "--dtype", "float16", "-o", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "classifier.0.weight holds 1e+06, beyond float16's range (+-65504)" in r.output
    assert not out.exists() and list(tmp_path.iterdir()) == [weights]
    r = cli("compile", SPECS / "lenet5.cnn", "--weights", weights, "-o", out)  # fine in float32
    assert r.exit_code == 0


def test_quantize_needs_float32(cli):
    r = cli("compile", SPECS / "lenet5.cnn", "--dtype", "float16", "--quantize", "int8")
    assert r.exit_code == 2 and "--quantize int8 starts from float32 weights" in r.output


BN_SPEC = "input 3x8x8\nconv 4 3x3 pad=1\nbatchnorm\nrelu6\nflatten\ndense 2\n"


def bn_weights(tmp_path, gamma, var):
    net = cnndsl.parse(BN_SPEC)
    arrays = {p.name: np.full(p.shape, 0.1, np.float32) for p in net.graph.params()}
    arrays["1.weight"][:] = gamma
    arrays["1.running_var"][:] = var
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    spec = tmp_path / "bn.cnn"
    spec.write_text(BN_SPEC)
    return spec, path


def test_float16_batchnorm_whose_scale_overflows_is_refused_at_its_line(tmp_path, cli):
    spec, weights = bn_weights(tmp_path, gamma=1e4, var=1e-9)  # scale 1e4 / sqrt(1e-5) = 3.16e6
    r = cli("compile", spec, "--weights", weights, "--dtype", "float16", "-o", tmp_path / "m.onnx")
    assert r.exit_code == 1 and f"{spec}:3:1: error: batchnorm '1' scales by up to 3.16" in r.stderr
    assert "beyond float16's range (+-65504)" in r.stderr
    assert not (tmp_path / "m.onnx").exists()
    r = cli("compile", spec, "--weights", weights, "--dtype", "float16", "--fold-bn", "-o", tmp_path / "m.onnx")
    assert r.exit_code == 1 and "after folding batchnorm '1' into it" in r.stderr
    assert "compile without --fold-bn, or as float32" in r.stderr
    r = cli("compile", spec, "--weights", weights, "-o", tmp_path / "m.onnx")  # float32 is fine
    assert r.exit_code == 0


def test_same_seed_same_bytes_different_seed_different_weights():
    net = cnndsl.load(SPECS / "lenet5.cnn")
    a = net.to_onnx(seed=3).SerializeToString()
    b = cnndsl.load(SPECS / "lenet5.cnn").to_onnx(seed=3).SerializeToString()
    c = net.to_onnx(seed=4).SerializeToString()
    assert a == b and a != c


@pytest.mark.parametrize("spec, fold_bn, given, dtype", [
    ("lenet5", False, False, "float32"),
    ("lenet5", False, True, "float32"),  # given weights are written whole, the rest streamed
    ("resnet18", True, False, "float32"),  # folded conv weights are made whole
    ("lenet5", False, True, "float16"),
    ("resnet18", True, False, "float16"),
])
def test_streamed_compile_equals_the_in_memory_model(tmp_path, monkeypatch, spec, fold_bn, given, dtype):
    from cnndsl.api import CompileOptions
    from cnndsl.weights import seeded as weights

    monkeypatch.setattr(weights, "CHUNK", 4096)  # so most tensors stream in several chunks
    net = cnndsl.load(SPECS / f"{spec}.cnn")
    given = {"features.3.weight": np.full((16, 6, 5, 5), 0.5, np.float32)} if given else None
    options = CompileOptions(seed=2, weights=given, strict=False, fold_bn=fold_bn, dtype=dtype)
    net.compile(replace(options, output=tmp_path / "m.onnx"))
    assert (tmp_path / "m.onnx").read_bytes() == net.compile(options).model.SerializeToString()
