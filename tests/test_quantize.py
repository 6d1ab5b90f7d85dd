"""int8: `compile --quantize int8` writes a QDQ model that onnxruntime runs, and says how far it moved."""

from __future__ import annotations

import os

import numpy as np
import onnx
from helpers import SPECS

from cnndsl.runtime.run import Runner


def test_int8_model_runs_and_reports_drift(tmp_path, cli):
    out = tmp_path / "lenet5_int8.onnx"
    r = cli("compile", SPECS / "lenet5.cnn", "--quantize", "int8", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert "int8 QDQ, calibrated on 16 seeded random inputs" in r.stdout
    assert "relative error" in r.stdout and "top-1 agreement" in r.stdout
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    int8 = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8) >= 61_000  # the weights themselves are int8
    assert os.listdir(tmp_path) == ["lenet5_int8.onnx"]  # no temporaries left
    y = Runner.from_model(str(out), device="cpu").run(np.ones((2, 1, 32, 32), np.float32))
    assert y.shape == (2, 10)


def test_calibration_file_must_fit_the_network(tmp_path, cli):
    np.save(tmp_path / "cal.npy", np.zeros((4, 3, 32, 32), np.float32))
    r = cli("compile", SPECS / "lenet5.cnn", "--quantize", "int8", "--calibration", tmp_path / "cal.npy",
            "-o", tmp_path / "q.onnx")
    assert r.exit_code == 1 and "the input's channels is 3; the model needs 1" in r.stderr
    assert not (tmp_path / "q.onnx").exists()
