"""cnndsl against the path users take today (PyTorch -> torch.onnx.export -> onnxruntime), measured
in the same run on the same machine. Prints one table: each figure, the peer's, and the ratio.

    python benchmarks/run.py [--peer-python PATH] [--quick] [--only analysis|compile|inference]

The peer needs torch and torchvision; --peer-python names an interpreter that has them (default:
this one, if it can import torch). Without a peer, cnndsl's own figures are still printed.
Outputs go to a temporary folder (or --out); nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CNNDSL = [sys.executable, "-m", "cnndsl"]
THREADS = 2

PEER_EXPORT = r'''
import sys
import torch, torchvision
name, out, weights = sys.argv[1:4]
kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
if weights != "-":
    torch.manual_seed(0)
    for m in model.modules():  # exercise batchnorm with non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 2.0)
torch.onnx.export(model, torch.randn(1, 3, 224, 224), out, dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
if weights != "-":
    import safetensors.torch
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
'''

GEMM = r'''
import time, numpy as np
n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32); b = a.copy()
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(10))
print(2 * n ** 3 / best / 1e9)
'''


def timed(cmd: list[str], runs: int, env=None) -> tuple[float, float, int]:
    """Median and spread (max - min) of whole-process wall seconds, and the peak RSS in bytes."""
    walls, peak = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
        peak = max(peak, usage.ru_maxrss * 1024)
    return statistics.median(walls), max(walls) - min(walls), peak


def has_torch(python: str) -> bool:
    return subprocess.run([python, "-c", "import torch, torchvision, safetensors"], capture_output=True).returncode == 0


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, step: str, ours: str, peer: str = "-", ratio: str = "-") -> None:
        self.rows.append((step, ours, peer, ratio))
        print(f"  {step}: {ours} | peer {peer} | {ratio}", file=sys.stderr, flush=True)

    def print(self) -> None:
        header = ("step", "cnndsl", "peer", "ratio")
        widths = [max(len(r[i]) for r in self.rows + [header]) for i in range(4)]
        for i, row in enumerate([header] + self.rows):
            cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))]
            print("  ".join(cells))
            if i == 0:
                print("-" * (sum(widths) + 6))


def analysis(t: Table, runs: int) -> None:
    specs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.cnn"))
    med, spread, _ = timed(CNNDSL + ["params", *specs], runs)
    t.add(f"params specs/*.cnn ({len(specs)} specs), whole process", f"{med:.3f} s ±{spread:.3f}")
    med, spread, rss = timed(CNNDSL + ["params", "specs/mlp_12mp.cnn"], runs)
    t.add("params specs/mlp_12mp.cnn, whole process", f"{med:.3f} s, {rss / 1e6:.0f} MB peak RSS")


def compilation(t: Table, out: Path, peer: str | None, runs: int) -> None:
    script = out / "export.py"
    script.write_text(PEER_EXPORT)
    for spec, tv, weight_bytes in (("resnet152", "resnet152", 60_192_808 * 4 + 216_320 * 4),
                                   ("vgg16", "vgg16", 138_357_544 * 4)):
        med, spread, rss = timed(CNNDSL + ["compile", f"specs/{spec}.cnn", "-o", str(out / f"{spec}.onnx")], runs)
        ours = f"{med:.2f} s ±{spread:.2f}, RSS {rss / 1e9:.2f} GB = {rss / weight_bytes:.2f}x weights"
        if peer:
            p_med, p_spread, p_rss = timed([peer, str(script), tv, str(out / f"peer_{tv}.onnx"), "-"], runs)
            t.add(f"compile {spec}, whole process", ours, f"{p_med:.2f} s ±{p_spread:.2f}",
                  f"{p_med / med:.1f}x faster")
        else:
            t.add(f"compile {spec}, whole process", ours)


def interleaved(paths: dict[str, Path], batch: int, rounds: int, per_round: int, macs: int) -> dict:
    """Latency of several models measured in alternating rounds, so drift in the machine's load
    falls on all of them alike. Returns name -> (median ms, p10-p90 spread ms, GFLOP/s)."""
    import numpy as np

    from cnndsl.runtime.run import Runner

    runners = {name: Runner.from_model(str(p), device="cpu", threads=THREADS) for name, p in paths.items()}
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in runners.values():
        for _ in range(2):
            r.run(x)
    for _ in range(rounds):
        for name, r in runners.items():
            for _ in range(per_round):
                t = time.perf_counter()
                r.run(x)
                times[name].append((time.perf_counter() - t) * 1000)
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = (med, float(np.percentile(ts, 90) - np.percentile(ts, 10)), 2 * macs * batch / med / 1e6)
    return out


def inference(t: Table, out: Path, peer: str | None, models: list[tuple[str, str]], quick: bool) -> None:
    from cnndsl.api import load

    for spec, tv in models:
        net = load(ROOT / "specs" / f"{spec}.cnn")
        paths = {"ours": out / f"{spec}_w.onnx", "ours --fold-bn": out / f"{spec}_wf.onnx"}
        weights_args = []
        if peer:
            weights = out / f"{tv}.safetensors"
            paths["peer"] = out / f"peer_{tv}_w.onnx"
            subprocess.run([peer, str(out / "export.py"), tv, str(paths["peer"]), str(weights)], check=True,
                           cwd=ROOT, capture_output=True)
            weights_args = ["--weights", str(weights)]
        builds = [("ours", []), ("ours --fold-bn", ["--fold-bn"])]
        if spec == "resnet50":  # the int8 path, calibrated on seeded inputs
            paths["ours int8"] = out / f"{spec}_int8.onnx"
            builds.append(("ours int8", ["--quantize", "int8", "--calibration-samples", "8"]))
        for name, extra in builds:
            subprocess.run(CNNDSL + ["compile", f"specs/{spec}.cnn", *weights_args, *extra, "-o", str(paths[name])],
                           check=True, cwd=ROOT, capture_output=True)
        for batch in (1, 8):
            rounds, per_round = (4, 3) if quick else (6, 5)
            if batch == 8:
                per_round = max(1, per_round // 2)
            got = interleaved(paths, batch, rounds, per_round, net.totals.macs)
            for name in [n for n in paths if n.startswith("ours")]:
                med, spread, gflops = got[name]
                text = f"{med:.1f} ms (p10-p90 {spread:.1f}), {gflops:.0f} GFLOP/s"
                step = f"onnxruntime CPU {THREADS} threads, {spec} batch {batch}" + name[len("ours"):]
                if "peer" in got:
                    p_med, p_spread, _ = got["peer"]
                    t.add(step, text, f"{p_med:.1f} ms (p10-p90 {p_spread:.1f})", f"{med / p_med:.2f}")
                else:
                    t.add(step, text)
            if spec == "resnet50" and batch == 8:
                env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
                env.update(OPENBLAS_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
                gemm = float(subprocess.run([sys.executable, "-c", GEMM], capture_output=True, text=True, env=env,
                                            check=True).stdout)
                best = max(got["ours"][2], got["ours --fold-bn"][2])
                t.add(f"resnet50 batch 8 vs float32 GEMM peak (numpy, {THREADS} threads)",
                      f"{best:.0f} GFLOP/s", f"peak {gemm:.0f} GFLOP/s", f"{best / gemm:.0%} of peak")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", default=sys.executable, help="a Python with torch and torchvision")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and only resnet50 for inference")
    ap.add_argument("--only", choices=["analysis", "compile", "inference"], help="run one section")
    ap.add_argument("--out", help="folder for generated models (default: a temporary folder)")
    args = ap.parse_args()
    peer = args.peer_python if has_torch(args.peer_python) else None
    out = Path(args.out or tempfile.mkdtemp(prefix="cnndsl-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    runs = 3 if args.quick else 5
    print(f"machine: {os.cpu_count()} cores; peer: {peer or 'not installed (torch, torchvision)'}; outputs in {out}",
          file=sys.stderr)
    t = Table()
    if args.only in (None, "analysis"):
        analysis(t, runs=runs + 2)
    if args.only in (None, "compile"):
        compilation(t, out, peer, runs=runs)
    if args.only in (None, "inference"):
        models = [("resnet50", "resnet50")] + ([] if args.quick else [("googlenet_torchvision", "googlenet"),
                                                                     ("vgg16", "vgg16")])
        inference(t, out, peer, models, args.quick)
    print()
    t.print()


if __name__ == "__main__":
    main()
