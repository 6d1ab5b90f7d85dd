"""What `cnndsl import` costs on ResNet-152 (241 MB of weights), as a whole process: wall time, CPU
time and peak memory, against the peer in the same run, `python -c "onnx.load(model)"` (what any
tool that reads the model with onnx pays before it does anything).

    python benchmarks/import.py [--model FILE.onnx] [--runs N] [--no-bytecode]

Without --model it compiles specs/resnet152.cnn to a temporary folder first. Targets (issue 13):
under 2 s whole process, peak memory within 1.5x the weights. Each figure is the median of --runs
(default 3), after one run of each command that is not counted; on a busy machine wall time
grows, CPU time and memory hardly do. Python's bytecode is compiled in that first run, into a
temporary folder, as an installed package has it (PYTHONDONTWRITEBYTECODE would otherwise make
every run compile cnndsl's sources again, 0.27 s here); --no-bytecode keeps the environment as
it is.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(command: list[str], env: dict) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user and system) and peak resident bytes of ``command`` (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def environment(tmp: str, bytecode: bool) -> dict:
    """The commands' environment: this tree first, and its bytecode in ``tmp`` (see the docstring)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "bytecode")
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="an ONNX model to import (default: ResNet-152 compiled by cnndsl)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-bytecode", action="store_true", help="run as the environment says (see above)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(tmp, not args.no_bytecode)
        model = args.model
        if model is None:
            model = str(Path(tmp) / "resnet152.onnx")
            subprocess.run([sys.executable, "-m", "cnndsl", "compile", str(ROOT / "specs" / "resnet152.cnn"), "-o",
                            model], check=True, capture_output=True, env=env)
        weights = os.path.getsize(model)
        ours = [sys.executable, "-m", "cnndsl", "import", model, "-o", str(Path(tmp) / "m.cnn"), "--weights-out",
                str(Path(tmp) / "m.safetensors")]
        peer = [sys.executable, "-c", f"import onnx; onnx.load({model!r})"]
        startup = [sys.executable, "-c", "import cnndsl.cli"]
        rows = {}
        for name, command in (("cnndsl import (spec and weights)", ours), ("onnx.load alone (peer)", peer),
                              ("python startup", startup)):
            measure(command, env)  # not counted: bytecode, caches
            runs = [measure(command, env) for _ in range(args.runs)]
            rows[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                          max(r[2] for r in runs))
    print(f"model: {model if args.model else 'specs/resnet152.cnn, compiled'} ({weights / 1e6:,.0f} MB); "
          f"bytecode: {'as the environment says' if args.no_bytecode else 'compiled in the first run'}")
    print(f"{'':34s} {'wall s':>7} {'CPU s':>6} {'peak MB':>8} {'peak / file':>11}")
    for name, (seconds, cpu, peak) in rows.items():
        print(f"{name:34s} {seconds:7.2f} {cpu:6.2f} {peak / 1e6:8.0f} {peak / weights:11.2f}x")
    t, _, m = rows["cnndsl import (spec and weights)"]
    pt, _, pm = rows["onnx.load alone (peer)"]
    print(f"import / onnx.load: {t / pt:.2f}x the time, {m / pm:.2f}x the memory; "
          f"targets: under 2 s ({'met' if t < 2 else 'NOT met'}), memory within 1.5x the weights "
          f"({'met' if m <= 1.5 * weights else 'NOT met'})")
    print(f"(CPU: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
          f"this process's own peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
