"""cnndsl's ONNX models work outside cnndsl: bare onnxruntime, Netron, and PyTorch through onnx2torch.

- Bare onnxruntime (runs in CI): compiled files load and run in a fresh interpreter where
  `import cnndsl` fails, with cnndsl's input and output shapes and a dynamic batch axis.
- Netron (runs in CI, no browser; `tools/netron_browser.py` checks the drawing in Chromium): Netron's
  own server serves its page and, at the URL the page names, exactly our file's bytes.
- onnx2torch (needs torch and onnx2torch, skipped in CI): the converted torch module computes what
  onnxruntime computes on the same model, within 1e-5 of the largest output, and it trains: one SGD
  step changes every parameter and lowers the loss. So a network designed in cnndsl trains in PyTorch.

onnx2torch 1.5.15 (the newest) has gaps, asserted in ``test_onnx2torch_gaps`` so they stay visible.
It has no converter for Flatten-21, which every classifier holds at cnndsl's default opset 21, nor for the
opset-22 versions of Conv, MaxPool, GlobalAveragePool and AveragePool: compile with opset 19 or 20
(`to_onnx(opset=19)`, `cnndsl compile --opset 19`), whose Flatten is Flatten-13. Nor has it one for
AveragePool-19, so no opset cnndsl writes (19 to 23) gives an AveragePool it converts (lenet5, and
GoogLeNet's final pool). AveragePool-19 differs from -11 only by a `dilations` attribute that cnndsl
never writes, so the round trips lend onnx2torch its own AveragePool-11 converter for it
(``averagepool19``), the workaround a user would take. LRN converts (to torch.nn.LocalResponseNorm)
and matches.

    python -m pytest tests/test_interop.py      # with a venv that has torch and onnx2torch for all of it
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import SPECS

import cnndsl
from cnndsl.api import CompileOptions

TOLERANCE = 1e-5
ONNX2TORCH_OPSET = 19


# --- compiled files, shared by the bare-onnxruntime and Netron tests --------------------------

# file stem -> (spec, compile options)
FILES = {
    "lenet5": ("lenet5", {}),
    "googlenet": ("googlenet", {}),
    "resnet18": ("resnet18", {}),
    "resnet18-fold-bn": ("resnet18", {"fold_bn": True}),
    "conv_example-float16": ("conv_example", {"dtype": "float16"}),
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """stem -> (path of the compiled .onnx, its checked Network)."""
    out = tmp_path_factory.mktemp("interop")
    files = {}
    for stem, (spec, options) in FILES.items():
        net = cnndsl.load(SPECS / f"{spec}.cnn")
        path = out / f"{stem}.onnx"
        net.compile(CompileOptions(seed=0, output=path, **options))
        files[stem] = (path, net)
    return files


# --- plain onnxruntime, cnndsl blocked ---------------------------------------------------------

# Run with `python -I -c`: no cwd or PYTHONPATH on sys.path, and cnndsl blocked before anything else.
BARE_ORT = """
import sys
sys.modules["cnndsl"] = None  # as if cnndsl were not installed: `import cnndsl` raises ImportError
import json

import numpy as np
import onnxruntime as ort

try:
    import cnndsl  # noqa: F401
    raise SystemExit("cnndsl is importable: the block failed")
except ImportError:
    pass
seen = {}
for path, batch in json.loads(sys.argv[1]):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    x = np.random.default_rng(0).standard_normal((batch, *inp.shape[1:])).astype(np.float32)
    (y,) = session.run(None, {inp.name: x})
    seen[path] = {"input": [inp.name, inp.shape], "output": [out.name, list(y.shape)],
                  "provider": session.get_providers()[0], "finite": bool(np.isfinite(y).all())}
print(json.dumps(seen))
"""


def test_runs_in_bare_onnxruntime_without_cnndsl(compiled, tmp_path):
    batch = 3
    jobs = [[str(path), batch] for path, _ in compiled.values()]
    proc = subprocess.run([sys.executable, "-I", "-c", BARE_ORT, json.dumps(jobs)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    for stem, (path, net) in compiled.items():
        got = seen[str(path)]
        assert got["input"] == ["input", ["N", *net.input_shape]], stem
        assert got["output"] == ["output", [batch, *net.output_shape]], stem
        assert got["provider"] == "CPUExecutionProvider", stem
        assert got["finite"], stem


def test_only_standard_onnx_operators(compiled):
    import onnx

    for stem, (path, _) in compiled.items():
        model = onnx.load(str(path))
        assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}, stem
        assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}, stem


# --- Netron ------------------------------------------------------------------------------------

def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.mark.parametrize("stem", ["lenet5", "googlenet"])
def test_netron_serves_the_model(compiled, stem):
    netron = pytest.importorskip("netron")
    path, _ = compiled[stem]
    address = netron.serve(str(path), address=("127.0.0.1", 0), browse=False)
    try:
        base = f"http://{address[0]}:{address[1]}"
        status, kind, page = _get(base + "/")
        assert (status, kind) == (200, "text/html")
        html = page.decode("utf-8")
        assert "<title>Netron</title>" in html
        # The page names the model's URL in a meta tag; Netron's script fetches it from there.
        found = re.search(r'<meta name="file" content="([^"]+)">', html)
        assert found, "Netron's page names no model file"
        assert found.group(1) == f"/data/{path.name}"
        status, kind, data = _get(base + found.group(1))
        assert (status, kind) == (200, "application/octet-stream")
        assert data == path.read_bytes()
        status, _, reader = _get(base + "/onnx.js")  # Netron's ONNX reader, which the page loads
        assert status == 200 and reader
    finally:
        netron.stop(address)
    deadline = time.monotonic() + 5  # the server thread notices the stop within its 0.25 s poll
    while netron.status(address) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not netron.status(address)
    with pytest.raises(OSError):
        _get(base + "/")


# --- onnx2torch: same numbers as onnxruntime, and it trains ------------------------------------

# What stock onnx2torch cannot convert in our models: (at the default opset, at ONNX2TORCH_OPSET).
ONNX2TORCH_GAPS = {
    "lenet5": ({"AveragePool-19", "Flatten-21"}, {"AveragePool-19"}),
    "resnet18": ({"Flatten-21"}, set()),
    "googlenet_torchvision": ({"Flatten-21"}, set()),
    "alexnet": ({"Flatten-21"}, set()),
    "googlenet": ({"AveragePool-19", "Flatten-21"}, {"AveragePool-19"}),
}

ROUND_TRIPS = [("lenet5", False), ("resnet18", False), ("resnet18", True), ("googlenet_torchvision", False),
               ("alexnet", False), ("googlenet", False)]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def onnx2torch(torch):
    return pytest.importorskip("onnx2torch")


def _missing_converters(model, registry) -> set[str]:
    import onnx

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    missing = set()
    for node in model.graph.node:
        try:
            registry.get_converter(node.op_type, opset)
        except NotImplementedError:
            schema = onnx.defs.get_schema(node.op_type, max_inclusive_version=opset)
            missing.add(f"{node.op_type}-{schema.since_version}")
    return missing


@pytest.mark.parametrize("spec", list(ONNX2TORCH_GAPS))
def test_onnx2torch_gaps(onnx2torch, spec):
    """The converters stock onnx2torch lacks for our models, and the error a user sees. If this
    fails because a converter appeared, onnx2torch has caught up: update the table and the docstring."""
    from onnx2torch.node_converters import registry

    net = cnndsl.load(SPECS / f"{spec}.cnn")
    default_gaps, opset19_gaps = ONNX2TORCH_GAPS[spec]
    model = net.to_onnx(seed=0)
    assert _missing_converters(model, registry) == default_gaps
    assert _missing_converters(net.to_onnx(seed=0, opset=ONNX2TORCH_OPSET), registry) == opset19_gaps
    unconverted = r"Converter is not implemented .*operation_type='(Flatten|AveragePool)'"
    with pytest.raises(NotImplementedError, match=unconverted):
        onnx2torch.convert(model)


@pytest.fixture
def averagepool19(onnx2torch, monkeypatch):
    """Lend onnx2torch its AveragePool-11 converter for AveragePool-19, which only added `dilations`
    (refused here, though cnndsl never writes them); monkeypatch takes it back after the test."""
    from onnx2torch.node_converters import registry

    convert11 = registry.get_converter("AveragePool", 11)

    def convert19(node, graph):
        if any(d != 1 for d in node.attributes.get("dilations", [1])):
            raise NotImplementedError("AveragePool-19 with dilations")
        return convert11(node, graph)

    key = registry.OperationDescription(domain="", operation_type="AveragePool", version=19)
    monkeypatch.setitem(registry._CONVERTER_REGISTRY, key, convert19)


@pytest.mark.parametrize(("spec", "fold_bn"), ROUND_TRIPS,
                         ids=[f"{s}-{'fold-bn' if f else 'plain'}" for s, f in ROUND_TRIPS])
def test_onnx2torch_matches_onnxruntime_and_trains(torch, onnx2torch, averagepool19, spec, fold_bn):
    import onnxruntime as ort

    net = cnndsl.load(SPECS / f"{spec}.cnn")
    model = net.to_onnx(seed=0, opset=ONNX2TORCH_OPSET, fold_bn=fold_bn)
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"input": x})

    module = onnx2torch.convert(model).eval()
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    rel = float(np.abs(got - expected).max() / np.abs(expected).max())
    assert rel <= TOLERANCE, f"{spec}: max|torch - onnxruntime| / max|onnxruntime| = {rel:.3g}"
    lrn = sum(node.op_type == "LRN" for node in model.graph.node)
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in module.modules()) == lrn

    params = [p for p in module.parameters() if p.requires_grad]
    if not fold_bn:
        assert sum(p.numel() for p in params) == net.totals.params
    before = [p.detach().clone() for p in params]
    target = torch.randint(0, expected.shape[1], (len(x),), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(params, lr=1e-3)
    module.train()
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)), target)
    unchanged = [i for i, (p, b) in enumerate(zip(params, before, strict=True)) if torch.equal(p, b)]
    assert not unchanged, f"{spec}: {len(unchanged)} of {len(params)} parameters did not move"
    assert after.item() < loss.item(), f"{spec}: loss {loss.item():.4f} -> {after.item():.4f}"
