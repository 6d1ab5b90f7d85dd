"""Import torchvision models as torch.onnx exports them, and prove each import (issue 13).

For each model: build it from torchvision with random weights (weights=None), random
batchnorm statistics, and random values for what torchvision starts at a constant (norm scales
and shifts, zero biases, layer scales: an exporter stores equal tensors once and drops zero
biases, which trained weights never are); export it with torch.onnx (the TorchScript exporter
and the dynamo exporter), run `cnndsl import`, compile the imported spec with the imported weights, and compare
with onnxruntime on the exported file. Prints one row per export: exporter, opset, nodes, lines
of the imported spec vs ours, parameters (imported / torchvision), max relative error, import
time (whole process: `python -m cnndsl import`), and whether the weight names were kept.

Needs torch, torchvision and onnxscript (not cnndsl's dependencies):
    PYTHONPATH=. /path/to/torch-venv/bin/python tools/import_torch.py [--models resnet18 ...]
    [--exporters legacy dynamo] [--keep DIR] [--fixtures DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# torchvision model -> (our spec, input side, keyword arguments)
MODELS = {
    "alexnet": ("alexnet_torchvision", 224, {}),
    "vgg16": ("vgg16", 224, {}),
    "resnet18": ("resnet18", 224, {}),
    "resnet50": ("resnet50", 224, {}),
    "resnet152": ("resnet152", 224, {}),
    "resnext50_32x4d": ("resnext", 224, {}),
    "googlenet": ("googlenet_torchvision", 224, {"aux_logits": False, "init_weights": True}),
    "inception_v3": ("inception_v3", 299, {"aux_logits": False, "init_weights": True}),
    "squeezenet1_1": ("squeezenet", 224, {}),
    "densenet121": ("densenet", 224, {}),
    "mobilenet_v2": ("mobilenet_v2", 224, {}),
    "mobilenet_v3_large": ("mobilenet_v3", 224, {}),
    "mnasnet1_0": ("mnasnet", 224, {}),
    "efficientnet_b0": ("efficientnet", 224, {}),
    "regnet_y_400mf": ("regnet", 224, {}),
    "vgg11": ("vgg11", 224, {}),
    "vgg19": ("vgg19", 224, {}),
    "vgg16_bn": ("vgg_bn", 224, {}),
    "resnet34": ("resnet34", 224, {}),
    "resnet101": ("resnet101", 224, {}),
    "efficientnet_v2_s": ("efficientnet_v2", 384, {}),
    "convnext_tiny": ("convnext", 224, {}),
    "shufflenet_v2_x1_0": ("shufflenet_v2", 224, {}),
    "fcn_resnet50": ("fcn_resnet50", 520, {"weights_backbone": None}),
    "deeplabv3_resnet50": ("deeplabv3_resnet50", 520, {"weights_backbone": None}),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", 520, {"weights_backbone": None}),
}
SEGMENTATION = {"fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"}
# legacy: the TorchScript exporter (dynamo=False) with do_constant_folding=False; legacy-folded: its
# default, which folds each batchnorm into its conv and names the results onnx::Conv_N; dynamo:
# torch.onnx.export(dynamo=True) as it is by
# default, optimised, which folds each batchnorm into its conv; dynamo-raw: the same, optimize=False
EXPORTERS = ("legacy", "legacy-folded", "dynamo", "dynamo-raw")


def build(name: str):
    import torch
    import torchvision

    spec, side, kwargs = MODELS[name]
    torch.manual_seed(0)
    family = torchvision.models.segmentation if name in SEGMENTATION else torchvision.models
    model = getattr(family, name)(weights=None, **kwargs).eval()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    with torch.no_grad():  # what torchvision starts at a constant (norm scales and shifts, zero biases, layer
        for p in model.parameters():  # scales) made to differ, as training makes it: an exporter stores equal
            if p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):  # tensors once and drops zero biases
                p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.75 if p.reshape(-1)[0] != 0
                        else torch.randn(p.shape, generator=g) * 0.1)
    return model, side



def export(model, side: int | tuple, exporter: str, path: str, opset: int) -> None:
    """``model`` exported to ``path``: its input is 3 x side x side, or the shape ``side`` gives."""
    import torch

    # a batch of 2: torch.export takes a size-1 axis for a constant, which breaks a dynamic batch
    x = torch.randn(2, *side) if isinstance(side, tuple) else torch.randn(2, 3, side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter in ("legacy", "legacy-folded"):  # folded: torch.onnx's default, batchnorms folded into convs
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                              do_constant_folding=exporter == "legacy-folded",
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        else:
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                        optimize=exporter == "dynamo",
                                        input_names=["input"], output_names=["logits"],
                                        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
                                        verbose=False)
            program.save(path)


def row(name: str, exporter: str, opset: int, keep: Path) -> dict:
    import onnx
    import onnxruntime as ort

    import cnndsl
    from cnndsl.api import CompileOptions

    model, side = build(name)
    params_torch = sum(p.numel() for p in model.parameters())
    path = str(keep / f"{name}-{exporter}.onnx")
    export(model, side, exporter, path, opset)
    nodes = len(onnx.load(path, load_external_data=False).graph.node)
    spec_path, weights_path = keep / f"{name}-{exporter}.cnn", keep / f"{name}-{exporter}.safetensors"
    start = time.perf_counter()
    command = [sys.executable, "-m", "cnndsl", "import", path, "-o", str(spec_path), "--weights-out", str(weights_path)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    stored = _stored_params(path)
    out = {"model": name, "exporter": exporter, "opset": opset, "nodes": nodes, "seconds": seconds,
           "params_torch": params_torch if exporter in ("legacy", "dynamo-raw") else stored}
    if done.returncode != 0:
        out["error"] = done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit {done.returncode}"
        return out
    text = spec_path.read_text()
    ours = (ROOT / "specs" / f"{MODELS[name][0]}.cnn").read_text()
    out["lines"], out["ours"] = _code_lines(text), _code_lines(ours)
    out["names_kept"] = "names are" not in done.stderr and "could not all be kept" not in done.stderr
    net = cnndsl.load(spec_path)
    out["params"] = net.totals.params
    compiled = net.compile(CompileOptions(weights=str(weights_path)))
    x = np.random.default_rng(0).standard_normal((2, 3, side, side)).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    a = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(compiled.model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ya = a.run(None, {a.get_inputs()[0].name: x})[0]
    yb = b.run(None, {b.get_inputs()[0].name: x})[0]
    out["rel_err"] = float(np.abs(ya - yb).max() / max(np.abs(ya).max(), 1e-30))
    return out


def _stored_params(path: str) -> int:
    """The trained weights an optimised export keeps, counted at each layer that reads them (its
    optimiser folds a batchnorm into the conv before it, drops biases that are all zero and stores
    equal tensors once, so torchvision's count is not in the file)."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    sizes = {t.name: int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    for n in m.graph.node:  # an exporter that stores equal tensors once names the others by an Identity
        if n.op_type == "Identity" and n.input[0] in sizes:
            sizes[n.output[0]] = sizes[n.input[0]]
    trained = {"Conv": slice(1, 3), "ConvTranspose": slice(1, 3), "Gemm": slice(1, 3), "MatMul": slice(1, 2),
               "BatchNormalization": slice(1, 3), "LayerNormalization": slice(1, 3),
               "Add": slice(0, 2), "Mul": slice(0, 2)}  # a Linear's bias; a layer scale
    return sum(sizes.get(i, 0) for n in m.graph.node if n.op_type in trained for i in n.input[trained[n.op_type]]
               if sizes.get(i, 0) > 1 or n.op_type not in ("Add", "Mul"))  # not GELU's constants


def _code_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--exporters", nargs="*", default=list(EXPORTERS), choices=EXPORTERS)
    ap.add_argument("--opset", type=int, default=None,
                    help="the opset to export (default: 17 for the TorchScript exporter, 18 for dynamo, its own)")
    ap.add_argument("--keep", help="keep the exported models and imported specs in this folder (not the imported "
                    "weights: 25 models' exports alone take gigabytes)")
    args = ap.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="cnndsl-import-torch-")
    keep = Path(args.keep) if args.keep else Path(scratch.name)
    keep.mkdir(parents=True, exist_ok=True)
    print("torch: torchvision's parameter count; for dynamo (optimised), the weights the file keeps: the optimiser "
          "folds batchnorms into convs and drops all-zero biases")
    print(f"{'model':<20} {'exporter':<10} {'opset':>5} {'nodes':>6} {'lines':>11} {'params':>12} {'torch':>12} "
          f"{'rel err':>9} {'time':>6}  names")
    failed = 0
    for name in args.models:
        for exporter in args.exporters:
            try:
                opset = args.opset or (17 if exporter.startswith("legacy") else 18)  # each exporter's own
                r = row(name, exporter, opset, keep)
            except Exception as exc:  # noqa: BLE001 - a tool: report and go on
                r = {"model": name, "exporter": exporter, "opset": opset, "error": f"{type(exc).__name__}: {exc}"}
            for suffix in (".safetensors", *(() if args.keep else (".onnx", ".cnn"))):
                (keep / f"{name}-{exporter}{suffix}").unlink(missing_ok=True)
            if "error" in r:
                failed += 1
                print(f"{name:<20} {exporter:<10} {r['opset']:>5} FAILED: {r['error'][:200]}")
                continue
            ok = r["rel_err"] <= 1e-5 and r["params"] == r["params_torch"] and r["lines"] <= 1.5 * r["ours"]
            failed += not ok
            print(f"{name:<20} {exporter:<10} {r['opset']:>5} {r['nodes']:>6} {r['lines']:>5}/{r['ours']:<5} "
                  f"{r['params']:>12,} {r['params_torch']:>12,} {r['rel_err']:>9.1e} {r['seconds']:>5.2f}s  "
                  f"{'kept' if r['names_kept'] else 'made'}{'' if ok else '  <- FAILS'}")
    scratch.cleanup()
    print(f"{failed} failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
