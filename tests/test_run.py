"""Device choice with the CUDA provider mocked at the onnxruntime boundary (CI has no GPU)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import cnndsl
from cnndsl.errors import RunError
from cnndsl.runtime import run as runmod

MODEL = cnndsl.parse("input 1x4x4\nconv 2 3x3\n").to_onnx().SerializeToString()


class FakeSession:
    """Stands in for onnxruntime.InferenceSession; reports the providers it was 'given'."""

    def __init__(self, model, options, providers, enabled):
        self.providers = [p for p in providers if p in enabled]

    def get_providers(self):
        return self.providers

    def get_inputs(self):
        class Meta:
            name, shape, type = "input", ["N", 1, 4, 4], "tensor(float)"

        return [Meta()]

    def get_outputs(self):
        class Meta:
            name, shape, type = "output", ["N", 2, 2, 2], "tensor(float)"

        return [Meta()]


def fake_ort(monkeypatch, enabled):
    monkeypatch.setattr(runmod, "cuda_problem", lambda: None)
    monkeypatch.setattr(ort, "InferenceSession",
                        lambda model, options, providers: FakeSession(model, options, providers, enabled))


def test_auto_uses_cuda_when_it_really_loads(monkeypatch):
    fake_ort(monkeypatch, {runmod.CUDA, runmod.CPU})
    r = runmod.Runner.from_model(MODEL, device="auto")
    assert r.provider == runmod.CUDA and r.note is None


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_provider_listed_but_not_enabled(monkeypatch, device):
    """onnxruntime-gpu lists CUDA, then silently falls back to CPU: we check get_providers()."""
    fake_ort(monkeypatch, {runmod.CPU})
    if device == "cuda":
        with pytest.raises(RunError, match="CUDA is not usable"):
            runmod.Runner.from_model(MODEL, device=device)
    else:
        r = runmod.Runner.from_model(MODEL, device=device)
        assert r.provider == runmod.CPU and "running on CPU" in r.note


def test_missing_library_is_named(monkeypatch):
    monkeypatch.setattr(runmod, "cuda_problem", lambda: "the CUDA provider needs libcudnn.so.9, which cannot be loaded")
    with pytest.raises(RunError, match="libcudnn.so.9"):
        runmod.Runner.from_model(MODEL, device="cuda")


def test_cpu_never_asks_for_cuda(monkeypatch):
    monkeypatch.setattr(runmod, "cuda_problem", lambda: pytest.fail("cpu must not probe CUDA"))
    r = runmod.Runner.from_model(MODEL, device="cpu")
    assert r.provider == runmod.CPU
    assert r.run(np.ones((1, 4, 4), np.float32)).shape == (1, 2, 2, 2)  # batch axis added


@pytest.mark.parametrize("x, message", [
    (np.ones((1, 2, 4, 4)), "channels is 2"),
    (np.ones((1, 1, 4, 5)), "width is 5"),
    (np.ones((4, 4)), "2 axes"),
    (np.array([["a"]]), "dtype"),
])
def test_input_validation(x, message):
    r = runmod.Runner.from_model(MODEL, device="cpu")
    with pytest.raises(RunError, match=message):
        r.run(x)


def test_text_input_reshaped_to_the_model(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text(" ".join(str(i) for i in range(16)))
    assert runmod.load_input(str(f), ("N", 1, 4, 4)).shape == (1, 1, 4, 4)
    f.write_text("1 2 3")
    with pytest.raises(RunError, match="3 numbers; one input needs 16"):
        runmod.load_input(str(f), ("N", 1, 4, 4))


class FakeBinding:
    def __init__(self, log):
        self.log = log

    def bind_ortvalue_input(self, name, value):
        self.log.append(("input", name, value.device_name(), value.shape()))

    def bind_output(self, name, device):
        self.log.append(("output", name, device))

    def synchronize_outputs(self):
        self.log.append("sync")


class FakeOrtValue:
    def __init__(self, x, device):
        self.x, self.device = x, device

    @classmethod
    def ortvalue_from_numpy(cls, x, device, index):
        assert index == 0
        return cls(x, device)

    def device_name(self):
        return self.device

    def shape(self):
        return list(self.x.shape)


def test_cuda_benchmarks_keep_input_and_output_on_the_gpu(monkeypatch):
    """On CUDA, bench times run_with_iobinding on device-resident tensors, not session.run."""
    from cnndsl.runtime.bench import measure

    log = []

    class CudaSession(FakeSession):
        def io_binding(self):
            return FakeBinding(log)

        def run_with_iobinding(self, binding):
            log.append("run")

        def run(self, *args):
            pytest.fail("a CUDA benchmark must not copy through session.run")

    monkeypatch.setattr(runmod, "cuda_problem", lambda: None)
    monkeypatch.setattr(ort, "InferenceSession",
                        lambda model, options, providers: CudaSession(model, options, providers, set(providers)))
    monkeypatch.setattr(ort, "OrtValue", FakeOrtValue)
    r = measure(MODEL, device="cuda", batch=4, runs=5, warmup=2)
    assert r.provider == runmod.CUDA and r.io_binding and r.runs == 5
    assert log[:2] == [("input", "input", "cuda", [4, 1, 4, 4]), ("output", "output", "cuda")]
    assert log[2:] == ["run", "sync"] * 7  # 2 warm-up runs and 5 timed, each synchronised


def test_cpu_benchmarks_run_plainly():
    from cnndsl.runtime.bench import measure

    r = measure(MODEL, device="cpu", batch=2, runs=3, warmup=1)
    assert r.provider == runmod.CPU and not r.io_binding and r.runs == 3


@pytest.mark.parametrize("command", ["run", "bench"])
def test_an_onnx_model_whose_batch_cannot_fit_is_refused_before_running(compiled, cli, command, monkeypatch):
    """A compiled model has no spec to count from: its activations are estimated from ONNX shape
    inference (a batch of 5,000,000 LeNet-5 inputs once grew onnxruntime to 20 GB)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = cli(command, compiled("lenet5"), "--batch", 5_000_000)
    assert r.exit_code == 1
    assert "running this model on a batch of 5000000 cannot fit" in r.stderr and "--batch" in r.stderr
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing big allocated


def test_widest_activation_of_a_compiled_model(compiled):
    import onnx

    from cnndsl.runtime.run import widest_activation_bytes

    model = onnx.load(compiled("lenet5"))
    # LeNet-5's widest node is the tanh after its first conv: 6x28x28 in and out, float32
    assert widest_activation_bytes(model, 10) == 10 * (2 * 6 * 28 * 28) * 4


def test_the_estimate_never_computes_a_constant():
    """A 4 GiB ConstantOfShape whose shape is an initializer (tools/hostile.py, seed 7): shape
    inference reads the initializer and the estimate sees the 4 GiB; ONNX's data propagation would
    build the tensor to learn it (a machine killed it, trying), so it is not used."""
    import resource

    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from cnndsl.runtime.run import widest_activation_bytes

    shape = numpy_helper.from_array(np.array([1 << 30], np.int64), "shape")
    graph = helper.make_graph([helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                               helper.make_node("Add", ["x", "big"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert widest_activation_bytes(model, 1) >= 4 << 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def _counting_compiles(monkeypatch):
    calls = []
    real = cnndsl.api.Network.to_onnx

    def counted(self, **options):
        calls.append(options)
        return real(self, **options)

    monkeypatch.setattr(cnndsl.api.Network, "to_onnx", counted)
    return calls


def test_run_keeps_its_compiled_session(monkeypatch, tmp_path):
    """issue 15: a second net.run(x) with the same device and options costs the inference alone (it
    compiles once); other options, another device or a rewritten weights file compile again; weights
    given as arrays (which may change in place) compile every time."""
    net = cnndsl.parse("network t\ninput 3x8x8\nconv 4 3x3 relu\nglobalavgpool\nflatten\ndense 2\n")
    calls = _counting_compiles(monkeypatch)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    a, _ = net.run(x, device="cpu")
    b, _ = net.run(x, device="cpu")
    assert len(calls) == 1 and np.array_equal(a, b)
    c, _ = net.run(x, device="cpu", seed=1)
    assert len(calls) == 2 and not np.array_equal(a, c)
    net.run(x, device="cpu", seed=1)
    assert len(calls) == 2
    weights = tmp_path / "w.npz"
    arrays = {p.name: np.full(p.shape, 0.5, np.float32) for p in net.graph.params()}
    np.savez(weights, **arrays)
    net.run(x, device="cpu", weights=str(weights))
    net.run(x, device="cpu", weights=str(weights))
    assert len(calls) == 3
    np.savez(weights, **{k: v * 2 for k, v in arrays.items()})
    os.utime(weights, ns=(1, 1))  # a rewritten file, whatever the clock's resolution
    net.run(x, device="cpu", weights=str(weights))
    assert len(calls) == 4
    net.run(x, device="cpu", weights=arrays)
    net.run(x, device="cpu", weights=arrays)
    assert len(calls) == 6


def test_two_threads_importing_onnxruntime_both_get_it_whole(tmp_path):
    """The playground runs two models at once: the second thread must not get a half-imported module."""
    import subprocess
    import sys

    probe = ("import threading\nfrom cnndsl.runtime.run import onnxruntime\nout = []\n"
             "ts = [threading.Thread(target=lambda: out.append(hasattr(onnxruntime(), 'InferenceSession')))"
             " for _ in range(4)]\n[t.start() for t in ts]; [t.join() for t in ts]\nprint(out)")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=root)
    assert done.stdout.strip() == "[True, True, True, True]", done.stderr
