"""Plain helpers for the tests: paths, cached specs, error-table rows, specs that grow, and CPU
time. Importable without pytest (benchmarks/limits.py uses it).

Fixtures (the CLI runner, models compiled once per session) live in conftest.py; test modules
import from here (``from helpers import SPECS``), never from conftest.
"""

from __future__ import annotations

import functools
import gc
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
TESTS = ROOT / "tests"
GOLDEN = TESTS / "golden"
FIXTURES = TESTS / "fixtures"


@functools.cache
def graph(name: str):
    """The checked ir.Graph of specs/NAME.cnn, loaded once (graphs are not changed by the code
    under test)."""
    import cnndsl

    return cnndsl.load(SPECS / f"{name}.cnn").graph


# -- error tables -----------------------------------------------------------------------------

def err(id: str, text: str, message: str, line: int, col: int, hint: str | None = None, marks=()):
    """One row of an error table: a bad spec, a substring of its message, where (1-based), a hint."""
    import pytest

    return pytest.param(text, message, line, col, hint, id=id, marks=marks)


def assert_error(text: str, message: str, line: int, col: int, hint: str | None) -> None:
    """Parsing and checking ``text`` raises a CnnDslError with that message, position and hint."""
    import pytest

    import cnndsl
    from cnndsl.errors import CnnDslError

    with pytest.raises(CnnDslError) as info:
        cnndsl.parse(text, path="t.cnn")
    exc = info.value
    assert message in exc.message
    assert exc.span is not None, f"no position for: {exc.message}"
    assert (exc.span.line, exc.span.col) == (line, col), exc.render()
    if hint is not None:
        assert exc.hint is not None and hint in exc.hint


# -- torchvision's state_dict -----------------------------------------------------------------

def assert_weights_match(label: str, graph, expected: dict) -> None:
    """The graph's weight names and shapes (constants aside) are exactly ``expected`` ({name:
    shape} from a state_dict); the message lists what is missing, extra or of another shape."""
    from cnndsl.model.ir import CONSTANT

    got = {}
    for p in graph.params():
        if p.role == CONSTANT:
            continue
        assert p.name not in got, f"{label}: {p.name} appears twice"
        got[p.name] = list(p.shape)
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = {k: (got[k], expected[k]) for k in sorted(set(got) & set(expected)) if got[k] != expected[k]}
    assert not (missing or unexpected or wrong), (
        f"{label}: missing (in torchvision, not the spec) {missing[:10]}; unexpected (in the spec only) "
        f"{unexpected[:10]}; shape differs (spec, torchvision) {dict(list(wrong.items())[:10])}")


# -- specs whose cost grows with their size ------------------------------------------------

def growing_specs() -> list:
    """Specs whose cost grows with their size: (id, the spec for size n, n), n as the fuzzer found
    it or as large as cnndsl.lang.limits admits. test_fuzz.py checks that they grow linearly;
    benchmarks/limits.py prints what they take in seconds."""
    from cnndsl.lang import limits

    size, layers = limits.MAX_SPEC_BYTES, limits.MAX_LAYERS
    head = "input 8\nrelu "
    return [
        # bombs (many-args, 10,000 of them, was one; the first row is the same spec at the size limit)
        ("arguments-at-size-limit", lambda n: head + "1 " * n + "\n", (size - len(head) - 1) // 2),
        ("many-statements", lambda n: "input 8\n" + "relu;" * n + "\n", 10_000),
        ("long-line-error", lambda n: "input 8\n" + "relu " * n + "@\n", 10_000),
        # the largest specs the limits admit
        ("lines-at-size-limit", lambda n: "input 8\n" + "relu\n" * n, (size - 8) // 5),
        ("convs-at-layer-limit", lambda n: f"input 1x8x8\nrepeat {n} conv 1 1\n", layers),
        ("batchnorms-at-layer-limit", lambda n: f"input 1x8x8\nconv 1 1\nrepeat {n} batchnorm\nrelu\n", layers - 2),
        # and a regression: 10,000 joins took ~14 s (check.internal probed add, add_1, ..., add_n
        # for the n-th join of a scope)
        ("residuals-at-layer-limit", lambda n: f"input 8\nrepeat {n} {{ residual {{ relu }} }}\n", layers // 2),
    ]


# -- cost, measured without a clock on the wall ----------------------------------------------

def cpu_seconds(fn, repeat: int = 1) -> float:
    """The least CPU time (time.process_time: this process, all its threads) of ``repeat`` calls
    of ``fn()``. Unlike wall time it does not grow when other programs load the machine."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()  # garbage left by earlier tests is not this call's cost
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@functools.cache
def parse_cost() -> float:
    """CPU seconds to parse, check and count specs/resnet50.cnn (the best of five): the unit in
    which tests state what "quick" means, so that a slower machine moves the bound with it."""
    import cnndsl

    text = (SPECS / "resnet50.cnn").read_text(encoding="utf-8")
    return cpu_seconds(lambda: cnndsl.parse(text).totals, repeat=5)


def assert_grows_linearly(run, small: int, large: int, slack: float = 3.0) -> None:
    """``run(n)`` costs at most ``slack`` x linear growth from ``small`` to ``large``: the CPU time
    of one large run against one small one, in this test. Quadratic work gives (large/small)^2,
    far beyond; load on the machine changes neither figure much, and noise that slows the small
    run only loosens the bound."""
    base = cpu_seconds(lambda: run(small))
    cost = cpu_seconds(lambda: run(large))
    bound = slack * (large / small) * base
    assert cost <= bound, (f"n={large:,} cost {cost:.3f} s of CPU, n={small:,} cost {base:.3f} s: "
                           f"{cost / base:.0f}x for {large / small:.0f}x the size (bound {bound / base:.0f}x)")


def cpu_time_of(pid: int) -> float:
    """CPU seconds another process has used so far (Linux /proc; 0.0 where it cannot be read)."""
    import os

    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
