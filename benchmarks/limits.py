"""What the largest specs cnndsl's limits admit cost, in seconds: wall and CPU time of parsing,
checking, counting and summarising each, at full size and at a tenth of it.

    python benchmarks/limits.py [--runs N]

The limits in cnndsl/lang/limits.py were sized so that each of these takes ~2 s on a 2-core
machine; this prints the figures to compare with that budget (on a quiet machine: wall time
grows with other load, CPU time much less). The test suite checks only what load cannot move:
that each grows linearly (tests/test_fuzz.py::test_cost_grows_linearly) and that bombs are
refused for less than a hundred parses of ResNet-50 (tests/test_limits.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers import growing_specs, parse_cost  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.errors import CnnDslError  # noqa: E402

BUDGET_S = 2.0  # what the limits were sized for, per spec


def measure(text: str, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of parse + totals + summary (a refusal counts as done)."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            net = cnndsl.parse(text, path="limits.cnn")
            _ = net.totals
            net.summary()
        except CnnDslError:
            pass
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each spec (the median is printed)")
    args = ap.parse_args()
    cnndsl.parse("input 8\nrelu\n")  # build the parser first
    print(f"unit: parsing specs/resnet50.cnn takes {parse_cost() * 1000:.1f} ms of CPU")
    header = f"{'spec':28s} {'n':>7s} {'bytes':>7s} {'wall s':>7s} {'CPU s':>7s} {'us/unit':>8s} {'n/10 CPU s':>10s}"
    print(header)
    print("-" * len(header))
    over = []
    for name, spec, n in growing_specs():
        text = spec(n)
        wall, cpu = measure(text, args.runs)
        _, small = measure(spec(n // 10), args.runs)
        print(f"{name:28s} {n:7,d} {len(text.encode()):7,d} {wall:7.2f} {cpu:7.2f} {cpu / n * 1e6:8.1f} {small:10.3f}")
        if cpu > BUDGET_S:
            over.append(name)
    print()
    print(f"budget ~{BUDGET_S:g} s of CPU per spec: " + (f"over it: {', '.join(over)}" if over else "all within"))


if __name__ == "__main__":
    main()
