"""What `Network.run` costs on its first and later calls (issue 15: it keeps its compiled session),
against the peer in the same run: onnxruntime's `session.run` alone on the same model and input.

    python benchmarks/run_session.py [--spec specs/resnet18.cnn] [--batch 1] [--runs 5]

A later call should cost the inference alone: its ratio to the peer near 1x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "specs" / "resnet18.cnn"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import cnndsl
    from cnndsl.runtime.run import Runner

    net = cnndsl.load(args.spec)
    x = np.random.default_rng(0).standard_normal((args.batch, *net.input_shape)).astype(np.float32)
    start = time.perf_counter()
    net.run(x, device="cpu")
    first = time.perf_counter() - start
    later = []
    for _ in range(args.runs):
        start = time.perf_counter()
        net.run(x, device="cpu")
        later.append(time.perf_counter() - start)
    peer = Runner.from_model(net.to_onnx().SerializeToString(), device="cpu")
    alone = []
    for _ in range(args.runs):
        start = time.perf_counter()
        peer.run(x)
        alone.append(time.perf_counter() - start)
    t_later, t_alone = statistics.median(later), statistics.median(alone)
    print(f"{net.name}, batch {args.batch}, CPU ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); "
          f"medians of {args.runs}")
    print(f"net.run, first call (compile + session + inference): {first:7.3f} s")
    print(f"net.run, later calls:                                 {t_later:7.3f} s")
    print(f"onnxruntime session.run alone (peer):                 {t_alone:7.3f} s")
    print(f"later call / peer: {t_later / t_alone:.2f}x; first / later: {first / t_later:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
