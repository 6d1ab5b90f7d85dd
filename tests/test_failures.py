"""Failure injection: nothing is ever half-written, builds are reproducible, faults are one line."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import ROOT, SPECS

import cnndsl
from cnndsl.api import CompileOptions
from cnndsl.errors import CnnDslError, WeightsError
from cnndsl.onnx import compile as compile_mod
from cnndsl.onnx.output import Output
from cnndsl.runtime.run import Runner
from cnndsl.weights.files import read_weights


@pytest.fixture
def existing(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the user's precious model")
    return out


class FailingOutput(Output):
    """Writes until ``budget`` bytes have gone out, then raises ``exc`` (a full disk, Ctrl-C...)."""

    def __init__(self, path, budget, exc):
        super().__init__(path)
        self.budget, self.exc = budget, exc

    def write(self, data):
        if len(data) > self.budget:
            super().write(bytes(memoryview(data).cast("B")[: self.budget]))
            raise self.exc
        self.budget -= len(data)
        super().write(data)


def failing_after(budget, exc):
    def open_output(path, size_hint=0):
        return FailingOutput(path, budget, exc)

    return open_output


@pytest.mark.parametrize("exc, code, message", [
    (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device"),
    (OSError(errno.EACCES, "Permission denied"), 1, "Permission denied"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_a_failure_while_compiling_is_one_line_and_the_right_exit_code(existing, monkeypatch, exc, code, message, cli):
    """The publisher's guarantees under failure are tested in test_io.py; here, what compile says."""
    monkeypatch.setattr(compile_mod, "_open_output", failing_after(100_000, exc))
    r = cli("compile", SPECS / "lenet5.cnn", "-o", existing)
    assert r.exit_code == code and message in r.stderr and "Traceback" not in r.stderr
    assert existing.read_bytes() == b"the user's precious model"
    assert os.listdir(existing.parent) == ["model.onnx"]  # no temporary left behind


WRITERS = {  # writer -> (its command, with OUT for the folder it writes in; what it says when publishing fails,
    # ABS/ for that folder's absolute path)
    "compile": (["compile", SPECS / "lenet5.cnn", "-o", "OUT/m.onnx"], "ABS/m.onnx: error: cannot write ABS/m.onnx: "),
    "int8": (["compile", SPECS / "lenet5.cnn", "--quantize", "int8", "-o", "OUT/m.onnx"],
             "OUT/m.onnx: error: cannot write OUT/m.onnx: "),
    "graph": (["graph", SPECS / "lenet5.cnn", "-o", "OUT/m.dot"], "OUT/m.dot: error: cannot write the diagram: "),
    "plot": (["plot", SPECS / "lenet5.cnn", "-o", "OUT/m.png"], "OUT/m.png: error: cannot write the chart: "),
    "fmt": (["fmt", "OUT/m.cnn"], "OUT/m.cnn: error: cannot write the spec: "),
    "export": (["export", "--triton", "OUT/repo", SPECS / "lenet5.cnn"],
               "OUT/repo/lenet5: error: cannot write the model: "),
    "maps": (["run", SPECS / "filters.cnn", "--image", ROOT / "tests" / "fixtures" / "shapes.png", "--save-maps",
              "OUT/maps", "--device", "cpu"], "OUT/maps: error: cannot write the maps: "),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_publishes_through_cnndsl_io_and_says_so_in_its_words(writer, tmp_path, monkeypatch, cli):
    """A failure inside the publisher (test_io.py tests it alone) leaves the writer's folder as it
    was, and the writer names its output in its own message."""
    from cnndsl import io

    out = tmp_path / "out"
    out.mkdir()
    for name in ("m.onnx", "m.dot", "m.png"):
        (out / name).write_bytes(b"old")
    (out / "m.cnn").write_text("features:{\n conv 6 5x5   # c1\n}\n")  # not canonical: fmt rewrites it
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    sync = io._sync

    def broken(path):
        if path.startswith(str(out)):
            raise OSError(errno.EIO, "Input/output error")
        sync(path)

    monkeypatch.setattr(io, "_sync", broken)
    monkeypatch.chdir(tmp_path)
    args, message = WRITERS[writer]
    r = cli(*[str(a).replace("OUT", "out") for a in args])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert message.replace("ABS", str(out)).replace("OUT", "out") + "Input/output error" in r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("make_bad", [
    lambda d: ("bad.cnn", "input 1x8x8\nconv 4 9x9\n"),
    lambda d: ("lenet5.cnn", None),
])
def test_bad_spec_or_bad_weights_leave_existing_output_untouched(existing, tmp_path, make_bad, cli):
    name, text = make_bad(tmp_path)
    spec = tmp_path / name if text else SPECS / name
    if text:
        spec.write_text(text)
    args = ["compile", spec, "-o", existing]
    if not text:
        np.savez(tmp_path / "w.npz", junk=np.zeros(3, np.float32))
        args += ["--weights", tmp_path / "w.npz"]
    r = cli(*args)
    assert r.exit_code == 1 and "error:" in r.stderr
    assert existing.read_bytes() == b"the user's precious model"
    assert sorted(os.listdir(tmp_path)) == sorted({"model.onnx", name if text else "w.npz"})


def test_large_models_use_external_data(tmp_path, monkeypatch, cli):
    """Above protobuf's limit (lowered here to 100 kB), weights go to OUT.onnx.data, and it says so."""
    monkeypatch.setattr(compile_mod, "PROTOBUF_LIMIT", 100_000)
    out = tmp_path / "lenet5.onnx"
    r = cli("compile", SPECS / "lenet5.cnn", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert "ONNX external data" in r.stderr and f"{out}.data" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["lenet5.onnx", "lenet5.onnx.data"]
    assert os.path.getsize(out) < 20_000 and os.path.getsize(f"{out}.data") > 240_000
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32), dtype=np.float32)
    external = Runner.from_model(str(out), device="cpu").run(x)
    inline = Runner.from_model(cnndsl.load(SPECS / "lenet5.cnn").to_onnx().SerializeToString(), device="cpu").run(x)
    np.testing.assert_array_equal(external, inline)
    r = cli("run", out)  # and the runner takes it from the path
    assert r.exit_code == 0 and "output: 1x10" in r.stdout


def test_streamed_file_equals_the_in_memory_model(tmp_path):
    """compile writes one tensor at a time; the bytes are exactly protobuf's own serialisation."""
    for spec in ("lenet5", "googlenet", "filters"):
        net = cnndsl.load(SPECS / f"{spec}.cnn")
        written = net.compile(CompileOptions(seed=3, output=tmp_path / "m.onnx"))
        assert written.paths == (str(tmp_path / "m.onnx"),) and written.bytes == (tmp_path / "m.onnx").stat().st_size
        assert (tmp_path / "m.onnx").read_bytes() == net.to_onnx(seed=3).SerializeToString()


def test_reproducible_across_processes(tmp_path):
    """Same spec and seed, two processes with different hash seeds: byte-identical files."""
    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"m{hash_seed}.onnx"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "cnndsl", "compile", "specs/googlenet.cnn", "-o", str(out),
                        "--seed", "7"], cwd=ROOT, env=env, check=True, capture_output=True)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize("fmt, damage, message", [
    ("npz", lambda b: b[: len(b) // 2], "corrupt or truncated .npz"),
    ("npz", lambda b: b"PK\x03\x04" + os.urandom(64), "corrupt or truncated .npz"),
    ("onnx", lambda b: b[: len(b) // 3], "not a readable ONNX model"),
    ("onnx", lambda b: b"\xff" * 50, "not a readable ONNX model"),
])
def test_corrupt_weight_files_name_the_file(tmp_path, fmt, damage, message):
    path = tmp_path / f"w.{fmt}"
    if fmt == "npz":
        np.savez(path, a=np.ones((64, 64), np.float32))
    else:
        onnx.save_model(cnndsl.load(SPECS / "lenet5.cnn").to_onnx(), path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(WeightsError, match=message) as info:
        read_weights(str(path))
    assert info.value.path == str(path)


def test_foreign_model_with_an_unsupported_op_fails_in_one_line(tmp_path, cli):
    from onnx import TensorProto, helper

    node = helper.make_node("NoSuchOp", ["input"], ["output"], domain="example.invalid")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("example.invalid", 1)], ir_version=10)
    onnx.save_model(model, tmp_path / "foreign.onnx")
    r = cli("run", tmp_path / "foreign.onnx")
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot load the model" in r.stderr


def test_run_refuses_a_batch_that_cannot_fit(monkeypatch, cli):
    monkeypatch.setattr(compile_mod, "available_memory", lambda: 50_000_000)
    r = cli("run", SPECS / "resnet18.cnn", "--batch", "64")
    assert r.exit_code == 1 and "use a smaller --batch" in r.stderr and "496.4 MB" in r.stderr


def test_compile_reports_progress_in_weight_bytes(tmp_path):
    seen = []
    net = cnndsl.load(SPECS / "resnet18.cnn")
    net.compile(CompileOptions(output=tmp_path / "r.onnx", progress=lambda done, total: seen.append((done, total))))
    assert len(seen) == len(list(net.graph.params()))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (net.totals.weight_bytes, net.totals.weight_bytes)


def test_streamed_compile_needs_only_the_tensors_in_flight(tmp_path, monkeypatch):
    """Memory: in memory the whole model, streamed to a file only the tensors being made."""
    from cnndsl.weights import seeded as weights

    monkeypatch.setattr(weights, "CHUNK", 4096)
    monkeypatch.setattr(compile_mod, "STREAM_OVERHEAD", 0)
    monkeypatch.setattr(compile_mod, "available_memory", lambda: 200_000)  # < lenet5's 246,824 weight bytes
    net = cnndsl.load(SPECS / "lenet5.cnn")
    with pytest.raises(CnnDslError, match="compiling needs about 740.5 KB of memory"):
        net.compile()
    net.compile(CompileOptions(output=tmp_path / "m.onnx"))  # 3 x 49 KB of chunks at most
    assert (tmp_path / "m.onnx").stat().st_size > 246_824


def test_a_model_larger_than_the_free_disk_is_refused_before_writing(existing, monkeypatch, cli):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(compile_mod.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100_000, 100_000))
    r = cli("compile", SPECS / "lenet5.cnn", "-o", existing)
    assert r.exit_code == 1 and "cannot compile lenet5 here: its 61,706 float32 weights take 246.8 KB" in r.stderr
    assert "has 100.0 KB free" in r.stderr and "--dtype float16" in r.stderr
    assert existing.read_bytes() == b"the user's precious model" and os.listdir(existing.parent) == ["model.onnx"]


def test_folded_weights_are_made_when_written_not_when_built():
    from cnndsl.onnx import emit

    asked = []
    graph = cnndsl.load(SPECS / "resnet18.cnn").graph
    model, weights = emit.build(graph, seed=0, opset=emit.DEFAULT_OPSET, parts=None, fold_bn=True, dtype="float32",
                                fill=lambda p: asked.append(p.name) or np.zeros(p.shape, np.float32))
    assert asked == []  # nothing drawn or folded yet
    folded = next(w for w in weights if w.name == "conv1.weight")
    assert folded.make().shape == (64, 3, 7, 7) and "conv1.weight" in asked and "bn1.running_var" in asked


def test_a_failed_write_leaves_no_drawing_thread_running(tmp_path, monkeypatch):
    import threading

    from cnndsl.weights import seeded as weights

    monkeypatch.setattr(weights, "CHUNK", 4096)

    def interrupt(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        cnndsl.load(SPECS / "lenet5.cnn").compile(CompileOptions(output=tmp_path / "m.onnx", progress=interrupt))
    assert info.value is not None  # the exception (and its traceback) still alive
    assert not [t for t in threading.enumerate() if t.name.startswith(("cnndsl-draw", "cnndsl-weights"))]
    assert os.listdir(tmp_path) == []
