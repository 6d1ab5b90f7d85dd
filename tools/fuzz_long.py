#!/usr/bin/env python3
"""Run the fuzz properties of tests/test_fuzz.py with far more examples than CI does.

    python tools/fuzz_long.py                      # ~1,500 examples per unit weight: ~50,000 cases
    python tools/fuzz_long.py --examples 5000      # more
    python tools/fuzz_long.py --random             # fresh (not derandomized) examples
    python tools/fuzz_long.py --strict             # do not tolerate the known bugs (stops at the first)
    python tools/fuzz_long.py -- -k soup -x        # anything after -- goes to pytest

It sets CNNDSL_FUZZ_EXAMPLES (and CNNDSL_FUZZ_STRICT, CNNDSL_FUZZ_RANDOM) and runs pytest on
tests/test_fuzz.py in a subprocess, then prints how many cases ran, per test, how long it took,
and how often a known bug was tolerated or skipped. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1500,
                    help="examples per unit weight of a property (CI uses 100; default %(default)s)")
    ap.add_argument("--strict", action="store_true", help="report the known bugs instead of tolerating them")
    ap.add_argument("--random", action="store_true", help="fresh random examples instead of derandomized ones")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cnndsl-fuzz-long-") as tmp:
        stats_file = Path(tmp) / "stats.json"
        env = dict(os.environ, CNNDSL_FUZZ_EXAMPLES=str(args.examples), CNNDSL_FUZZ_STATS=str(stats_file))
        env["CNNDSL_FUZZ_STRICT"] = "1" if args.strict else ""
        env["CNNDSL_FUZZ_RANDOM"] = "1" if args.random else ""
        cmd = [sys.executable, "-m", "pytest", "tests/test_fuzz.py", "-q", "-p", "no:cacheprovider",
               *args.pytest_args]
        print(f"$ CNNDSL_FUZZ_EXAMPLES={args.examples}{' CNNDSL_FUZZ_STRICT=1' if args.strict else ''}"
              f"{' CNNDSL_FUZZ_RANDOM=1' if args.random else ''} {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        wall = time.perf_counter() - start
        stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else None

    print()
    if stats is None:
        print(f"no statistics were written (pytest exit {rc}) after {wall:.1f} s")
        return rc or 1
    cases = stats["cases"]
    print(f"cases run: {cases:,} in {wall:.1f} s wall ({stats['seconds']:.1f} s in the tests, "
          f"{cases / max(stats['seconds'], 1e-9):,.0f} cases/s); "
          f"{'derandomized' if stats['derandomized'] else 'random'}, "
          f"{'strict' if stats['strict'] else 'known bugs tolerated'}")
    width = max(map(len, stats["per_test"]), default=0)
    for test, n in sorted(stats["per_test"].items(), key=lambda kv: -kv[1]):
        print(f"  {test:<{width}}  {n:>9,}")
    for key, what in (("tolerated", "known bug tolerated"), ("skipped", "known bug skipped (not run)")):
        for bug, n in sorted(stats[key].items()):
            print(f"  {what}: {bug} x {n:,}")
    print(f"pytest exit status: {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
