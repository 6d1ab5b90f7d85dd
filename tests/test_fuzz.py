"""Property-based fuzzing of the whole front end: parse, check, count, summarise.

The contract, for ANY input:

* ``cnndsl.parse(text, path="fuzz.cnn")`` (or ``cnndsl.load(path)`` for bytes) returns a
  Network, or raises ``CnnDslError`` whose ``render()`` starts ``fuzz.cnn:LINE:COL: error: ``
  (``fuzz.cnn: error: `` for a mistake about the whole file). No other exception, ever.
* A returned Network's ``totals`` and ``summary()`` work too.
* Each case takes at most ~2 s of CPU time and bounded memory (a guard lowers RLIMIT_AS around
  each case; a CPU-time timer interrupts a hang, and a far longer wall-clock one a case that
  blocks). CPU time (``time.process_time``), not the clock on the wall: a machine busy with
  other work must not fail a case (hypothesis' own deadline, which is wall time, is off).
* An input whose cost grows with its size (the largest specs the limits admit, long lines, many
  statements) costs at most ~3x linear growth: its CPU time against a tenth of it, measured in
  the same test. How long they take in seconds is a benchmark (benchmarks/limits.py).
* ``cnndsl check FILE`` exits 1 with ``path:line:col: error:`` on stderr and no traceback.

Strategies: (a) token soup from the grammar's own vocabulary and grammar-shaped programs,
(b) mutations of every shipped spec, (c) random text and bytes, invalid UTF-8, line-ending and
whitespace variants, and explicit resource bombs.

Size: ``CNNDSL_FUZZ_EXAMPLES`` is the number of examples of a weight-1 property (default 100,
the CI profile: about 2,800 cases in ~20 s of CPU; the three slowest properties run half their
weight there). ``tools/fuzz_long.py`` runs the
same properties with far more. Other knobs: ``CNNDSL_FUZZ_STRICT=1`` stops tolerating the known
bugs listed in ``KNOWN_BUGS`` (each is pinned below by a strict xfail test);
``CNNDSL_FUZZ_RANDOM=1`` draws fresh examples instead of the derandomized ones;
``CNNDSL_FUZZ_STATS=FILE`` writes the number of cases run (JSON) when the module finishes.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from helpers import ROOT, assert_grows_linearly, growing_specs
from hypothesis import example, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.lang.source import normalise
from cnndsl.layers import REGISTRY
from cnndsl.layers.base import _MISSING, schema

try:
    import resource
except ImportError:  # pragma: no cover - not on POSIX
    resource = None

SPEC_PATHS = sorted((ROOT / "specs").glob("*.cnn"))
SPEC_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in SPEC_PATHS}
PATH = "fuzz.cnn"

# -- configuration ----------------------------------------------------------------------------

BASE_EXAMPLES = int(os.environ.get("CNNDSL_FUZZ_EXAMPLES") or 100)
STRICT = os.environ.get("CNNDSL_FUZZ_STRICT", "") not in ("", "0")
RANDOM = os.environ.get("CNNDSL_FUZZ_RANDOM", "") not in ("", "0")
CASE_CPU_S = 2.0  # the contract: CPU seconds a case may take
HARD_CPU_S = 10.0  # a case still running after this much CPU time is interrupted and reported as a hang
WALL_BACKSTOP = 10  # x HARD_CPU_S of wall-clock time: a case blocked without using the CPU is a hang too
MEMORY_BUDGET = 1 << 30  # bytes of address space a case may add before it counts as unbounded
# Line breaks for str.splitlines() that the lexer does not count (SourceFile once split at them).
SPLITLINES_ONLY = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]

# Two profiles, chosen by CNNDSL_FUZZ_EXAMPLES; used as the parent of each property's settings
# (not loaded globally, so other test modules keep their own hypothesis settings).
for _name, _examples in (("cnndsl-fuzz-ci", 100), ("cnndsl-fuzz-long", BASE_EXAMPLES)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        derandomize=not RANDOM,
        deadline=None,  # wall time: a busy machine would fail it; contract() measures CPU time instead
        database=None,  # derandomized runs need no example database; keep the tree clean
        print_blob=True,
    )
CI = BASE_EXAMPLES == 100
PROFILE = settings.get_profile("cnndsl-fuzz-ci" if CI else "cnndsl-fuzz-long")


def fuzz(weight: float, ci: float | None = None):
    """@settings for a property: ``weight`` x the profile's examples (``ci`` x in the CI profile,
    for a property whose examples are slow to generate: tools/fuzz_long.py still runs ``weight``),
    derandomized, no deadline (each case's CPU time is checked by contract()). No health check
    is suppressed: every strategy draws bounded data in milliseconds."""
    if CI and ci is not None:
        weight = ci
    return settings(PROFILE, max_examples=max(5, int(PROFILE.max_examples * weight)),
                    derandomize=not RANDOM, deadline=None)


# -- known bugs: tolerated by the properties (unless STRICT), pinned by strict xfail tests -----

@dataclass(frozen=True)
class KnownBug:
    id: str
    reason: str
    trigger: object  # text -> bool: the input shape that provokes it
    types: tuple = ()  # exceptions tolerated when the trigger matches
    skip: bool = False  # the case cannot be run safely (memory or time blow-up): do not run it



# Bugs found by this file and since fixed are pinned as plain regression tests (REGRESSIONS
# below); what is still open is listed here and pinned by a strict xfail test (OPEN_BUGS).
KNOWN_BUGS: list[KnownBug] = []  # none open: each bug found became a regression test below


STATS: dict = {"cases": 0, "tolerated": {}, "skipped": {}, "per_test": {}}


def _known(text: str, exc: BaseException | None) -> KnownBug | None:
    if STRICT:
        return None
    for bug in KNOWN_BUGS:
        if bug.trigger(text) and (bug.skip if exc is None else isinstance(exc, bug.types)):
            return bug
    return None


def _count(key: str | None = None, bug: KnownBug | None = None) -> None:
    STATS["cases"] += 1
    test = (os.environ.get("PYTEST_CURRENT_TEST") or "?").split(" ")[0].split("::")[-1].split("[")[0]
    STATS["per_test"][test] = STATS["per_test"].get(test, 0) + 1
    if key:
        STATS[key][bug.id] = STATS[key].get(bug.id, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _module_teardown():
    """Remove the scratch directory; write the statistics where CNNDSL_FUZZ_STATS says."""
    start = time.perf_counter()
    yield
    shutil.rmtree(_TMP, ignore_errors=True)
    out = os.environ.get("CNNDSL_FUZZ_STATS")
    if out:
        data = dict(STATS, seconds=round(time.perf_counter() - start, 2), base_examples=BASE_EXAMPLES,
                    strict=STRICT, derandomized=not RANDOM)
        Path(out).write_text(json.dumps(data, indent=1), encoding="utf-8")


# -- the contract -----------------------------------------------------------------------------

class Hang(BaseException):
    """Raised by a timer in a case that runs too long (BaseException: nothing swallows it)."""


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return -1


# (timer, its signal, what its expiry means)
TIMERS = [("ITIMER_PROF", "SIGPROF", "CPU time"), ("ITIMER_REAL", "SIGALRM", "wall-clock time")]


class guarded:
    """Interrupt the block after ``hard_cpu_s`` seconds of CPU time (or WALL_BACKSTOP times as
    long on the wall clock, for a block that waits without computing); let it grow by at most
    ``memory`` bytes.

    Timers (SIGPROF counts this process's CPU time, SIGALRM the wall clock; each repeats every
    50 ms once due, since an exception raised inside a gc callback or a __del__ is swallowed)
    raise Hang; a lowered RLIMIT_AS turns unbounded memory into MemoryError. ``__exit__``
    allocates nothing before the memory limit is back.
    """

    def __init__(self, hard_cpu_s: float = HARD_CPU_S, memory: int = MEMORY_BUDGET) -> None:
        self.limits = {"ITIMER_PROF": hard_cpu_s, "ITIMER_REAL": WALL_BACKSTOP * max(hard_cpu_s, HARD_CPU_S)}
        self.memory = memory
        self.active = False
        self.timer = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self.old_limit = None

    def _on_alarm(self, signum, frame) -> None:
        timer, _, what = next(t for t in TIMERS if getattr(signal, t[1]) == signum)
        if not self.active:  # late: the block is over
            signal.setitimer(getattr(signal, timer), 0)
            return
        if frame is not None and frame.f_code is _GUARD_EXIT:  # leaving anyway; retried in 50 ms
            return
        raise Hang(f"still running after {self.limits[timer]:g} s of {what}")

    def __enter__(self) -> guarded:
        if self.timer:
            self.old_handlers = {sig: signal.signal(getattr(signal, sig), self._on_alarm) for _, sig, _ in TIMERS}
            self.callbacks = gc.callbacks[:]  # hypothesis times gc with a callback
            gc.callbacks.clear()
        if resource is not None and self.memory:
            now = _address_space()
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            want = now + self.memory
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            if now > 0 and (soft == resource.RLIM_INFINITY or want < soft):
                self.old_limit = (soft, hard)
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        self.active = True
        if self.timer:
            for timer, _, _ in TIMERS:
                signal.setitimer(getattr(signal, timer), self.limits[timer], 0.05)
        return self

    def __exit__(self, *exc_info) -> bool:
        self.active = False  # first: from here on an alarm does nothing
        if self.old_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.old_limit)
        if self.timer:
            for timer, sig, _ in TIMERS:
                signal.setitimer(getattr(signal, timer), 0)
                signal.signal(getattr(signal, sig), self.old_handlers[sig])
            gc.callbacks[:] = self.callbacks + [cb for cb in gc.callbacks if cb not in self.callbacks]
        return False


_GUARD_EXIT = guarded.__exit__.__code__


_RENDERED = re.compile(r"(?:(\d+):(\d+):)? error: ")


def assert_rendered(exc: CnnDslError, path: str, text: str | None) -> str:
    rendered = exc.render()
    assert isinstance(rendered, str) and str(exc) == rendered
    assert rendered.startswith(path + ":"), f"error not prefixed with {path!r}:\n{rendered}"
    m = _RENDERED.match(rendered, len(path) + 1)
    assert m, f"not `{path}:LINE:COL: error: ` nor `{path}: error: `:\n{rendered}"
    if m.group(1) is not None:
        line, col = int(m.group(1)), int(m.group(2))
        assert line >= 1 and col >= 1, rendered
        if text is not None:
            lines = normalise(text).count("\n") + 1  # a carriage return alone ends a line too
            assert line <= lines, f"located past the end of the file:\n{rendered}"
    return rendered


def contract(run, text: str | None, path: str = PATH, *, cpu_s: float | None = CASE_CPU_S,
             hard_cpu_s: float = HARD_CPU_S, memory: int = MEMORY_BUDGET, tolerate: bool = True):
    """Run ``run()`` (parse or load) under the contract. Returns the Network, the CnnDslError,
    or None for a tolerated known bug. Any other exception propagates (hypothesis shrinks it).
    ``cpu_s``: the CPU seconds the case may take (None: its growth is checked instead)."""
    probe = text or ""
    if tolerate and (bug := _known(probe, None)) is not None:
        _count("skipped", bug)
        return None
    _count()
    start = time.process_time()
    try:
        with guarded(hard_cpu_s, memory):
            try:
                net = run()
                totals = net.totals
                summary = net.summary()
                repr(net)
                outcome = net
            except CnnDslError as exc:
                assert_rendered(exc, path, text)
                outcome = exc
    except Hang as exc:
        raise AssertionError(f"hang: {exc} (contract: ~{CASE_CPU_S:g} s of CPU per case)") from None
    except MemoryError:
        raise AssertionError(f"unbounded memory: grew by more than {memory >> 20} MiB") from None
    except Exception as exc:
        if tolerate and (bug := _known(probe, exc)) is not None:
            _count("tolerated", bug)
            return None
        raise
    used = time.process_time() - start
    if cpu_s is not None:
        assert used <= cpu_s, f"took {used:.2f} s of CPU (contract: ~{cpu_s:g} s per case)"
    if isinstance(outcome, cnndsl.Network):
        assert isinstance(summary, str) and totals.layers == len(outcome.graph.nodes) > 0
        assert min(totals.params, totals.macs, totals.buffers, totals.constants) >= 0
    return outcome


def check_text(text: str, **kw):
    return contract(lambda: cnndsl.parse(text, path=PATH), text, **kw)


_TMP = Path(tempfile.mkdtemp(prefix="cnndsl-fuzz-"))  # for load(): bytes go through a real file


def check_bytes(data: bytes, **kw):
    path = _TMP / PATH
    path.write_bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    result = contract(lambda: cnndsl.load(path), text, str(path), **kw)
    if text is None:
        assert result is None or isinstance(result, CnnDslError), "invalid UTF-8 was accepted"
    return result


def same_outcome(a, b, *, messages: bool = True) -> None:
    """Two runs of equivalent text: both networks with equal totals, or both errors."""
    if a is None or b is None:  # a tolerated known bug
        return
    assert isinstance(a, cnndsl.Network) == isinstance(b, cnndsl.Network), (a, b)
    if isinstance(a, cnndsl.Network):
        assert a.totals == b.totals
        assert [n.name for n in a.graph.nodes] == [n.name for n in b.graph.nodes]
    elif messages:
        assert a.message == b.message


cnndsl.parse("input 1x8x8\nrelu\n")  # build (or load) the parser before the first case is measured

# -- (a) vocabulary ---------------------------------------------------------------------------

KEYWORDS = ["network", "input", "block", "repeat", "concat", "residual", "shortcut"]
KINDS = sorted(REGISTRY)
FIELDS = {kind: schema(cls) for kind, cls in REGISTRY.items()}
OPTION_NAMES = sorted({f.name for fs in FIELDS.values() for f in fs} | {"year", "top5"})
WORDS = sorted({w for fs in FIELDS.values() for f in fs for w in f.metadata["words"]}
               | {"true", "false", "none", "same", "valid", "ceil", "floor", "tanh"})
NUMBERS = ["0", "1", "2", "3", "5", "7", "64", "224", "1000", "-1", "-3", "1e12", "3.5", "0.5", ".5", "1.",
           "1e-4", "1e309", "-0", "007", "1000000000", str(2 ** 62), str(2 ** 63), str(10 ** 30)]
HUGE_NUMBERS = ["9" * 400, "1" * 4301]
SIZES = ["3x3", "1x1", "5x7", "2x1", "0x3", "1x28x28", "3x224x224", "3x32x32", "1x1x1x1", "8x8", "64"]
PUNCT = ["(", ")", "[", "]", "{", "}", ",", ";", ":", "=", "+", "-", "*", "/", "//", "%"]
NAMES = ["x", "c", "n", "width", "b", "stage", "foo", "_", "features", "layer1", "W"]
STRINGS = ['"LeNet"', '""', '"a # b"', '"unterminated', '"{"']
COMMENTS = ["# comment", "#", "# {", "#x\\"]
BREAKS = ["\n", "\r\n", "\\\n", ";", "\n\n"]
ODD = ["\t", "\x0c", "\r", "\x0b", "é", "\u2028", "\ufeff", "\x00", "\\", "@", "'", '"', "..", "1x",
       "x3", "-.5", "--1", "3x3x", "0x0", "1e", "1e+", "\x1c", "\U0001f600", "\ud800"] + HUGE_NUMBERS

token = st.one_of(
    st.sampled_from(KEYWORDS), st.sampled_from(KINDS), st.sampled_from(OPTION_NAMES),
    st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.sampled_from(SIZES),
    st.sampled_from(PUNCT), st.sampled_from(PUNCT), st.sampled_from(NAMES), st.sampled_from(STRINGS),
    st.sampled_from(COMMENTS), st.sampled_from(BREAKS), st.sampled_from(ODD),
    st.sampled_from(OPTION_NAMES).map(lambda o: o + "="), st.sampled_from(NAMES).map(lambda n: n + ":"),
    st.integers(-5, 300).map(str),
)
separator = st.sampled_from([" ", " ", " ", " ", "", "\n", "\t"])
HEADERS = ["", "", "input 3x32x32\n", "network n\ninput 1x28x28\n", "input 784\n", "input 1x8x8\nconv 8 3\n"]

token_soup = st.builds(
    lambda head, pairs: head + "".join(t + s for t, s in pairs),
    st.sampled_from(HEADERS), st.lists(st.tuples(token, separator), max_size=40))

# -- (a) grammar-shaped programs -------------------------------------------------------------

ACTS = sorted(next(f for f in FIELDS["conv"] if f.name == "act").metadata["words"])
INTERESTING = st.sampled_from([
    "0", "-1", "1e12", "3.5", str(10 ** 30), "1000000000", str(2 ** 62), "1e309", "-0.0", "true", "same",
    '"q"', "(1, 2)", "[[1]]", "(1, 2, 1, 2)", "[]", "()", "2x2", "nope"])


@cache
def small(lo: int = 1, hi: int = 7):
    return st.integers(lo, hi).map(str)


def _choice(*items):
    return st.sampled_from(items)


def rarely(draw, n: int) -> bool:
    """True about once in n + 1 draws. Hypothesis favours the ends of a range (0 and n), so the
    rare branch is the middle value."""
    return draw(st.integers(0, n)) == n // 2


MATRIX_NUMBER = _choice("0", "1", "-1", "2", "0.5", "-2", "1.5", "8")
EXPR_OF = {p: _choice(p, f"{p}*2", f"({p}+1)//2", f"{p}/2", f"{p}%3", f"{p}-1", f"2*{p}")
           for p in ("c", "n", "s", "width")}
WINDOW = small(1, 7) | st.builds("{}x{}".format, small(1, 5), small(1, 5))
STEP = small(1, 4) | st.builds("{}x{}".format, small(1, 3), small(1, 3))
ADAPTIVE = small(1, 8) | _choice("7x7", "2x4", "1x1")
COUNT = small(1, 64) | _choice("10", "16", "64", "1000")
PAD = _choice("same", "valid", "0", "1", "2", "1x2", "(0, 1, 0, 1)", "(1, 1, 1, 1)")
FIXED_BIAS = _choice("0", "0.5", "[0]", "[0, 1]", "(1)")
BOOL = _choice("true", "false")
ROUND = _choice("ceil", "floor")
RATE = _choice("0", "0.1", "0.5", "0.99", "1")
REAL = _choice("1e-5", "0.75", "2", "0.01", "1", "1e-4")
APPROXIMATE = _choice("none", "tanh")
ACT = st.sampled_from(ACTS)


def matrix(draw, rows: int, cols: int) -> str:
    return "[" + ", ".join("[" + ", ".join(draw(MATRIX_NUMBER) for _ in range(cols)) + "]"
                           for _ in range(rows)) + "]"


@st.composite
def fixed_kernel(draw):
    shape = draw(st.integers(0, 2))
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if shape == 0:
        return matrix(draw, rows, cols)
    mats = [matrix(draw, rows, cols) for _ in range(draw(st.integers(1, 2)))]
    return "[" + ", ".join(mats) + "]" if shape == 1 else "[[" + ", ".join(mats) + "]]"


FIELD_VALUES = {"stride": STEP, "dilation": STEP, "filters": COUNT, "units": COUNT, "pad": PAD,
                "groups": small(1, 4), "round": ROUND, "count_pad": BOOL, "rate": RATE, "eps": REAL,
                "alpha": REAL, "beta": REAL, "k": REAL, "slope": REAL, "axis": small(1, 4),
                "approximate": APPROXIMATE, "act": ACT, "size": small(1, 7)}


def field_value(draw, kind: str, name: str, params: list[str]) -> str:
    """A plausible value for ``kind``'s field ``name``; now and then an odd one."""
    if rarely(draw, 24):
        return draw(INTERESTING)
    if params and rarely(draw, 24):
        return draw(EXPR_OF[draw(st.sampled_from(params))])
    if name == "kernel":
        return draw(fixed_kernel()) if kind == "fixedconv" else draw(WINDOW)
    if name == "size" and kind == "adaptiveavgpool":
        return draw(ADAPTIVE)
    if name == "bias":
        return draw(FIXED_BIAS if kind == "fixedconv" else BOOL)
    return draw(FIELD_VALUES.get(name, small(0, 9)))


UNKNOWN_LAYERS = _choice("cnov 8 3", "dense", "pool 2", "Conv 8 3", "relu relu", "x")
EXTRA_ARGS = _choice("stride=2", "foo=1", "pad=same", "relu", "3")
KIND = st.sampled_from(KINDS)


@st.composite
def layer_stmt(draw, params: list[str], blocks: dict[str, list[str]]):
    choice = draw(st.integers(0, 19))
    if choice <= 1 and blocks:  # a block call
        name = draw(st.sampled_from(sorted(blocks)))
        args = [draw(small(1, 32)) if draw(st.booleans()) else f"{p}={draw(small(1, 32))}"
                for p in blocks[name] if draw(st.integers(0, 5))]
        return " ".join([name] + args)
    if choice == 10 and draw(st.booleans()):  # an unknown or misspelled kind
        return draw(UNKNOWN_LAYERS)
    kind = draw(KIND)
    positional, keyword = [], []
    for f in FIELDS[kind]:
        required = f.metadata["default"] is _MISSING
        if not draw(st.integers(0, 19)) < (19 if required else 6):
            continue
        value = field_value(draw, kind, f.name, params)
        if f.metadata["pos"] and draw(st.integers(0, 3)):
            positional.append(value)
        elif value in f.metadata["words"] and draw(st.booleans()):
            positional.append(value)
        else:
            keyword.append(f"{f.name}={value}")
    if rarely(draw, 30):
        keyword.append(draw(EXTRA_ARGS))
    args = positional + keyword
    if keyword and draw(st.integers(0, 4)) == 0:
        args = keyword + positional  # keywords may come first; positional order is kept
    return " ".join([kind] + args)


LABEL = _choice("features", "conv1", "a", "b", "layer1", "head", "downsample")
BAD_LABEL = _choice("0", "1x", "repeat", "relu")
REPEAT_COUNT = _choice("0", "1", "2", "3")
ODD_REPEAT_COUNT = _choice("1000", "100000", "1000000000", "-1", "2.5", "x", "(2)", "1x1")
SHORTCUT_NAME = _choice("", "downsample ", "proj ")


@st.composite
def statement(draw, params, blocks, depth=0, indent=""):
    kind = draw(st.integers(0, 12)) if depth < 3 else 0
    label = ""
    if draw(st.integers(0, 5)) == 5:
        label = draw(BAD_LABEL if rarely(draw, 12) else LABEL) + ": "
    inner = indent + "  "
    if kind <= 6:
        return indent + label + draw(layer_stmt(params, blocks))

    def body(least):
        return draw(st.lists(statement(params, blocks, depth + 1, inner), min_size=least, max_size=3))

    if kind == 7:
        return indent + label + "{\n" + "\n".join(body(0)) + "\n" + indent + "}"
    if kind == 8:
        return indent + label + "{ " + "; ".join(s.strip() for s in body(1)) + " }"
    if kind == 9:
        odd = rarely(draw, 10)
        count = draw(ODD_REPEAT_COUNT) if odd else (f"{params[0]}-1" if params and draw(st.booleans())
                                                     else draw(REPEAT_COUNT))
        if draw(st.booleans()):
            return indent + label + f"repeat {count} " + draw(layer_stmt(params, blocks))
        return indent + label + f"repeat {count} {{\n" + "\n".join(body(1)) + "\n" + indent + "}"
    if kind == 10:
        return indent + label + "concat {\n" + "\n".join(body(0)) + "\n" + indent + "}"
    text = indent + label + "residual {\n" + "\n".join(body(1)) + "\n" + indent + "}"
    if draw(st.booleans()):
        text += f" shortcut {draw(SHORTCUT_NAME)}{{\n" + "\n".join(body(1)) + "\n" + indent + "}"
    return text


GOOD_INPUT = _choice("3x32x32", "1x28x28", "1x8x8", "3x224x224", "784", "16", "1x5x5", "13x64x64")
BAD_INPUT = _choice("0x8x8", "3x32", "1x1000000x1000000", "(1, 8, 8)", "3x8x8 4", "n", "1x1x10000000")
NETWORK_EXTRA = _choice("", ' "A title"', " year=1998", " top5=101", " year=3.5", " foo=1", ' "A title"',
                        ' "t" year=2015 top5=3.57', " year=1998", "")
NETWORK_NAME = _choice("net", "lenet5", "x")
BLOCK_NAME = _choice("stage", "unit", "bottleneck", "b", "conv", "b", "stage", "unit", "bottleneck")
PARAMS = st.lists(_choice("c", "n", "s", "width"), max_size=3, unique=True)


@st.composite
def program(draw):
    """A program shaped by the grammar: header, blocks with parameters, nested statements."""
    lines = []
    if draw(st.booleans()):
        lines.append(f"network {draw(NETWORK_NAME)}{draw(NETWORK_EXTRA)}")
    input_line = f"input {draw(BAD_INPUT if rarely(draw, 12) else GOOD_INPUT)}"
    blocks: dict[str, list[str]] = {}
    defs = []
    for i in range(draw(st.integers(0, 2))):
        name = draw(BLOCK_NAME) + ("" if i == 0 else str(i))
        params = draw(PARAMS)
        first_default = draw(st.integers(0, len(params)))  # parameters with defaults come last
        written = [p if i < first_default else f"{p}={draw(small(1, 16))}" for i, p in enumerate(params)]
        body = draw(st.lists(statement(params, dict(blocks), 1, "  "), min_size=1, max_size=4))
        blocks[name] = params
        defs.append(f"block {name}({', '.join(written)}) {{\n" + "\n".join(body) + "\n}")
    stmts = draw(st.lists(statement([], blocks), min_size=1, max_size=6))
    placement = draw(st.integers(0, 9))
    if placement == 0:  # blocks after use
        lines += [input_line] + stmts + defs
    elif placement == 1:  # input after the layers
        lines += defs + stmts + [input_line]
    else:
        lines += [input_line] + defs + stmts
    sep = "\n" if draw(st.integers(0, 5)) else "; "
    text = sep.join(lines) + "\n"
    if rarely(draw, 9):
        text = text.replace("\n", " # note\n", draw(st.integers(1, 3)))
    return text


# -- (a) sound networks, with their shapes and parameter counts worked out independently ------

def _out(size: int, k: int, s: int, pad: str) -> int:
    return -(-size // s) if pad == "same" else (size - k) // s + 1


@st.composite
def sound_network(draw):
    """(text, output shape, trainable parameters): a network that must check, and what it gives.

    An oracle apart from cnndsl: the generator tracks the shape and counts the parameters
    (conv F·C/G·k·k + F, batchnorm 2C, dense U·N + U) itself.
    """
    c, h, w = draw(_choice(1, 3, 4)), draw(st.integers(6, 40)), draw(st.integers(6, 40))
    lines, params = [f"input {c}x{h}x{w}"], 0
    use_block = draw(st.booleans())
    if use_block:
        lines.append("block unit(c, s=1) {\n  conv c 3x3 stride=s pad=1 bias=false\n  batchnorm\n  relu\n}")
    for _ in range(draw(st.integers(1, 7))):
        op = draw(st.integers(0, 9))
        if op <= 2:  # conv
            f, k, s = draw(st.integers(1, 24)), draw(st.integers(1, min(5, h, w))), draw(st.integers(1, 2))
            pad = draw(_choice("same", "valid"))
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0 and f % g == 0]))
            act = draw(_choice("", " relu", " tanh"))
            bias = draw(st.booleans())
            extra = (f" groups={groups}" if groups > 1 else "") + ("" if bias else " bias=false")
            lines.append(f"conv {f} {k}x{k} stride={s} pad={pad}{act}{extra}")
            params += f * (c // groups) * k * k + (f if bias else 0)
            c, h, w = f, _out(h, k, s, pad), _out(w, k, s, pad)
        elif op == 3 and min(h, w) >= 2:  # pool
            kind = draw(_choice("maxpool", "avgpool"))
            lines.append(f"{kind} 2x2")
            h, w = h // 2, w // 2
        elif op == 4:
            lines.append("batchnorm")
            params += 2 * c
        elif op == 5:
            lines.append(draw(_choice("relu", "relu6", "tanh", "sigmoid", "identity", "dropout 0.2",
                                      "leakyrelu 0.1", "elu", "lrn 3")))
        elif op == 6:  # inception-like concat of 1x1 and 3x3 branches
            f1, f2 = draw(st.integers(1, 8)), draw(st.integers(1, 8))
            lines.append(f"concat {{\n  conv {f1} 1x1\n  {{ conv {f2} 3x3 pad=1; relu }}\n}}")
            params += f1 * c + f1 + f2 * c * 9 + f2
            c = f1 + f2
        elif op == 7:  # residual that keeps the shape
            lines.append(f"residual {{ conv {c} 3x3 pad=1; relu }}")
            params += c * c * 9 + c
        elif op == 8 and min(h, w) >= 2:  # residual with a projection
            f = draw(st.integers(1, 16))
            lines.append(f"down{len(lines)}: residual {{ conv {f} 3x3 stride=2 pad=1 }} "
                         f"shortcut {{ conv {f} 1x1 stride=2 }}")
            params += f * c * 9 + f
            if (c, h, w) != (f, _out(h, 3, 2, "same"), _out(w, 3, 2, "same")):
                params += f * c + f
            c, h, w = f, _out(h, 3, 2, "same"), _out(w, 3, 2, "same")
        elif op == 9 and use_block:
            f, s = draw(st.integers(1, 16)), draw(st.integers(1, 2))
            n = draw(st.integers(1, 3))
            lines.append(f"repeat {n} unit {f} s={s}" if s == 1 else f"unit {f} s={s}")
            for _ in range(n if s == 1 else 1):
                params += f * c * 9 + 2 * f
                c, h, w = f, _out(h, 3, s, "same"), _out(w, 3, s, "same")
    if lines[-1].startswith(("input", "block")):
        lines.append("relu")
    out: tuple[int, ...] = (c, h, w)
    if draw(st.booleans()):
        if draw(st.booleans()):
            lines.append("globalavgpool")
            h = w = 1
        lines.append("flatten")
        n = c * h * w
        for units in draw(st.lists(st.integers(1, 64), max_size=2)):
            lines.append(f"dense {units} relu")
            params += units * n + units
            n = units
        out = (n,)
    return "\n".join(lines) + "\n", out, params


# -- (b) mutations of the shipped specs ------------------------------------------------------

TOKEN_RE = re.compile(r'#[^\n]*|"[^"\n]*"|\d+(?:x\d+)+|(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|'
                      r"\d+(?:[eE][-+]?\d+)?|[A-Za-z_]\w*|//|\S")
NUMBER_RE = re.compile(r"\d|\.\d")
REPLACEMENTS = ["0", "-1", "1e12", "3.5", str(10 ** 30), "1000000000", "2x2", "(1, 2)", "x", "-0", "1e309"]


@st.composite
def mutated_spec(draw):
    name = draw(st.sampled_from(sorted(SPEC_TEXTS)))
    text = SPEC_TEXTS[name]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.integers(0, 8))
        if op >= 6:  # line operations
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == 6:
                del lines[i]
            elif op == 7:
                lines.insert(i, lines[i])
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
            continue
        toks = [m.span() for m in TOKEN_RE.finditer(text)]
        if not toks:
            break
        i = draw(st.integers(0, len(toks) - 1))
        a, b = toks[i]
        if op == 0:  # delete a token
            text = text[:a] + text[b:]
        elif op == 1:  # duplicate a token
            text = text[:b] + " " + text[a:b] + text[b:]
        elif op == 2:  # swap two tokens
            j = draw(st.integers(0, len(toks) - 1))
            (a, b), (c, d) = sorted([toks[i], toks[j]])
            if (a, b) != (c, d):
                text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        elif op in (3, 4):  # replace a number (or, failing that, any token) with an odd value
            nums = [t for t in toks if NUMBER_RE.match(text, t[0])]
            if nums:
                a, b = nums[draw(st.integers(0, len(nums) - 1))]
            text = text[:a] + draw(st.sampled_from(REPLACEMENTS)) + text[b:]
        else:  # replace a token with one from the vocabulary
            text = text[:a] + draw(token) + text[b:]
    return text


# -- (c) whitespace and encoding variants ----------------------------------------------------

def crlf_tabs(text: str) -> str:
    """Windows line endings and tab indentation: the same program."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        out.append("\t" * ((len(line) - len(stripped) + 1) // 2) + stripped)
    return "\r\n".join(out)


# ============================================================================================
# properties
# ============================================================================================

@fuzz(6)
@given(token_soup)
@example("")
@example("input")
@example("input 1x28x28\nconv 8 3x3 relu\nflatten\ndense 10")
@example("network a\nnetwork b\n")
@example("input 3x32x32\n" + "residual { conv 3 1 } shortcut")
@example("input 3x8x8\nconcat { }\n")
@example("input 8\x00")
def test_token_soup(text):
    check_text(text)


@fuzz(4, ci=2)  # ~20 ms to draw each program (hypothesis' ~60 us a choice): the slowest to generate
@given(program())
def test_grammar_shaped_programs(text):
    check_text(text)


@fuzz(3)
@given(sound_network())
def test_sound_networks_check_and_count_exactly(case):
    text, shape, params = case
    net = check_text(text)
    assert isinstance(net, cnndsl.Network), net.render()
    assert net.output_shape == shape
    assert net.totals.params == params


@fuzz(2, ci=1)  # programs again, each checked three times
@given(program() | sound_network().map(lambda case: case[0]))
def test_line_endings_and_tabs_do_not_change_meaning(text):
    base = check_text(text)
    same_outcome(base, check_text(crlf_tabs(text)))
    same_outcome(base, check_text(text.rstrip("\n")), messages=False)


@fuzz(6, ci=3)  # each parses a whole shipped spec: ~9 ms a case
@given(mutated_spec())
def test_mutated_specs(text):
    check_text(text)


@fuzz(2)
@given(st.sampled_from(sorted(SPEC_TEXTS)), st.data())
def test_specs_truncated_at_any_byte(name, data):
    raw = SPEC_TEXTS[name].encode("utf-8")
    if data.draw(st.booleans(), label="multibyte"):  # so a cut can land inside a character
        at = data.draw(st.integers(0, len(raw)), label="insert_at")
        raw = raw[:at] + "\n# é — ✓ 😀\n".encode() + raw[at:]
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    check_bytes(raw[:cut])


@fuzz(3)
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    check_text(text)


@fuzz(1)
@given(st.text(st.characters(exclude_categories=()), max_size=100))
def test_arbitrary_text_with_surrogates(text):
    check_text(text)


@fuzz(3)
@given(st.binary(max_size=400))
@example(b"")
@example(b"\xff\xfe")
@example(b"input 1x8x8\nconv 8 3\xff\n")
@example(b"\xef\xbb\xbfinput 1x8x8\nrelu\n")
@example(b"input 1x8x8\n# \xed\xa0\x80\nrelu\n")
def test_arbitrary_bytes(data):
    check_bytes(data)


INVALID_UTF8 = [b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\x80"]


@fuzz(2)
@given(st.sampled_from(sorted(SPEC_TEXTS)), st.sampled_from(INVALID_UTF8), st.data())
def test_spec_with_invalid_utf8_inserted(name, junk, data):
    raw = SPEC_TEXTS[name].encode("utf-8")
    at = data.draw(st.integers(0, len(raw)), label="at")
    result = check_bytes(raw[:at] + junk + raw[at:])
    assert result is None or isinstance(result, CnnDslError)


# ============================================================================================
# explicit cases: every shipped spec in every layout, resource bombs
# ============================================================================================

@pytest.mark.parametrize("name", sorted(SPEC_TEXTS))
def test_shipped_spec_layouts(name):
    text = SPEC_TEXTS[name]
    base = check_text(text)
    assert isinstance(base, cnndsl.Network)
    same_outcome(base, check_text(crlf_tabs(text)))
    same_outcome(base, check_text(text.rstrip("\n")))
    same_outcome(base, check_text(text.replace("\n", "  \t\n")))  # trailing blanks


def _ten_megabytes() -> bytes:
    unit = SPEC_TEXTS["resnet152.cnn"].encode("utf-8")
    return unit * (10_000_000 // len(unit) + 1)


CHAIN = "\n".join(f"block b{i}() {{ b{i + 1} }}" for i in range(300)) + "\nblock b300() { relu }\n"
BOMBS = {
    "empty": "",
    "blank": "\n\n   \n\t\n",
    "comments-only": "# nothing\n#\n",
    "missing-final-newline": "input 1x8x8\nconv 8 3",
    "lone-cr-endings": "input 1x8x8\rconv 8 3\r",
    "crlf": "input 1x8x8\r\nconv 8 3\r\n",
    "tabs": "input\t1x8x8\n\tconv\t8\t3\n",
    "bom": "\ufeffinput 1x8x8\nrelu\n",
    "nul": "input 1x8x8\n\x00\n",
    "lone-surrogate": "input 1x8x8\n\ud800\n",
    "open-braces": "{" * 5000,
    "open-parens": "input 1x8x8\nconv " + "(" * 5000,
    "open-brackets": "input 1x8x8\nfixedconv " + "[" * 5000,
    "closed-braces": "input 1x8x8\n" + "{" * 5000 + "relu" + "}" * 5000 + "\n",
    "closed-parens": "input 1x8x8\nconv 8 " + "(" * 5000 + "3" + ")" * 5000 + "\n",
    "closed-brackets": "input 1x8x8\nfixedconv " + "[" * 5000 + "1" + "]" * 5000 + "\n",
    "nested-concat": "input 1x8x8\n" + "concat { " * 3000 + "relu" + " }" * 3000 + "\n",
    "nested-residual": "input 1x8x8\n" + "residual { " * 3000 + "relu" + " }" * 3000 + "\n",
    "nested-repeat": "input 1x8x8\n" + "repeat 1 { " * 3000 + "relu" + " }" * 3000 + "\n",
    "closers-only": "}" * 5000 + ")" * 5000 + "]" * 5000,
    "negation-chain": "input 8\ndense " + "-" * 100_000 + "1\n",
    "sum-chain-100k": "input 8\ndense " + "+".join(["1"] * 100_000) + "\n",
    "product-chain-100k": "input 8\ndense " + "*".join(["1"] * 100_000) + "\n",
    "spaced-chain-100k": "input 8\ndense (" + " + ".join(["1"] * 100_000) + ")\n",
    "repeat-1e9": "input 1x8x8\nrepeat 1000000000 conv 8 3x3\n",
    "repeat-repeat": "input 1x8x8\nrepeat 100000 { repeat 100000 relu }\n",
    "self-block": "input 1x8x8\nblock b() { b }\nb\n",
    "self-block-in-default": "input 1x8x8\nblock b(x=1) { repeat x b }\nb\n",
    "mutual-blocks": "input 1x8x8\nblock a() { b }\nblock b() { a }\na\n",
    "block-chain-300": "input 1x8x8\n" + CHAIN + "b0\n",
    "huge-image": "input 1x1000000x1000000\nconv 8 3\n",
    "huge-flat": "input 1000000000000\ndense 10\n",
    "very-long-name": "input 8\n" + "a" * 200_000 + "\n",
    "very-long-string": 'network n "' + "t" * 200_000 + '"\ninput 8\nrelu\n',
}


@pytest.mark.parametrize("text", list(BOMBS.values()), ids=list(BOMBS))
def test_bombs(text):
    check_text(text, tolerate=False)


def test_ten_megabyte_file():
    result = check_bytes(_ten_megabytes(), tolerate=False)
    assert isinstance(result, CnnDslError)


def test_trillion_parameter_dense_counts_exactly():
    net = check_text("input 1000000\ndense 1000000\n", tolerate=False)
    assert net.totals.params == 10 ** 12 + 10 ** 6
    assert net.totals.macs == 10 ** 12
    net = check_text("input 1000000\ndense 1000000\ndense 1000000 bias=false\n", tolerate=False)
    assert net.totals.params == 2 * 10 ** 12 + 10 ** 6


# ============================================================================================
# bugs this file found: regressions (fixed since) and what is still open (strict xfail)
# ============================================================================================

E309 = "1" + "0" * 309
REGRESSIONS = [
    # (id, minimal input, what it did before the fix)
    ("int-literal-4301-digits", "input " + "1" * 4301,
     "ValueError from int() (Python's 4300-digit str->int limit) in parse.py expr_token"),
    ("dims-literal-4301-digits", "input 1x" + "1" * 4301 + "x1", "the same ValueError, on a size"),
    ("summary-of-4300-digit-count", "input 8\ndense " + "9" * 4299 + "\n",
     "parse returned, then summary() raised ValueError formatting a 4300-digit parameter count"),
    ("float-of-310-digit-int", "input 8\ndropout " + E309 + "\n",
     "OverflowError: int too large to convert to float (number() in layers/base.py)"),
    ("fixedconv-310-digit-weight", "input 1x8x8\nfixedconv [[" + E309 + "]]\n",
     "OverflowError: int too large to convert to float (the fixed kernel)"),
    ("arithmetic-int-times-float", "input 8\nblock b(x) { elu x }\nb 1.5*" + E309 + "\n",
     "OverflowError in values._binop: a 310-digit int times a float"),
    ("summary-bytes-overflow", "input 1x1x1\nconv 1 1 pad=1" + "0" * 160 + "\n",
     "summary() raised OverflowError in report.human_bytes (activation bytes past float range)"),
    ("adaptiveavgpool-larger-than-input", "input 1x8x8\nadaptiveavgpool 100000000\n",
     "built 10**8 windows before seeing the output exceeds the input: ~13 s, ~3 GB"),
    ("batchnorm-chain-recursion", "input 1\ndense 1\nrepeat 1000 batchnorm\n",
     "RecursionError in inits.feeds_relu (one frame per batchnorm after a weighted layer)"),
    ("one-megabyte-spec", "input 8\nrelu " + "1 " * 490_000 + "\n",
     "0.98 MB, then under the 1 MB size limit: ~24 s to parse (lark, ~20 us per token)"),
    ("hundred-thousand-layers", "input 1x8x8\nrepeat 100000 conv 1 1\n",
     "36 bytes, then within the 100,000-layer limit: ~7 s to check and summarise"),
]


@pytest.mark.parametrize("text", [t for _, t, _ in REGRESSIONS], ids=[i for i, _, _ in REGRESSIONS])
def test_regression(text):
    check_text(text, hard_cpu_s=2.5, memory=512 << 20, tolerate=False)


GROWING = growing_specs()


@pytest.mark.parametrize("spec, n", [g[1:] for g in GROWING], ids=[g[0] for g in GROWING])
def test_cost_grows_linearly(spec, n):
    """Under the contract at full size, and at most ~3x linear growth in CPU time from a tenth of
    it (quadratic work would be ~10x that). Load on the machine changes neither figure much."""
    def case(size):
        return check_text(spec(size), cpu_s=None, hard_cpu_s=30.0, memory=512 << 20, tolerate=False)

    assert_grows_linearly(case, n // 10, n)


def test_adaptive_pool_of_any_size_is_instant():
    """Regression: adaptiveavgpool listed every output window: 1x100000000 took ~8 s and >3 GB."""
    check_text("input 1x1x100000000\nadaptiveavgpool 1x100000000\n", hard_cpu_s=2.5, memory=512 << 20,
               tolerate=False)


@pytest.mark.parametrize("char", SPLITLINES_ONLY, ids=[f"U+{ord(c):04X}" for c in SPLITLINES_ONLY])
def test_excerpt_shows_the_line_the_error_is_on(char):
    """Regression: SourceFile split lines with str.splitlines(), which also breaks at these
    characters; the lexer does not, so the excerpt showed another line."""
    text = f"input 8 # {char}\nfoo\n"
    err = check_text(text, tolerate=False)
    assert isinstance(err, CnnDslError) and err.span.line == 2
    assert err.span.excerpt().splitlines()[0].endswith("| foo")


@pytest.mark.parametrize("text", ["network\x0c ", "input 8\nconv 8 ( # \u2028 "],
                         ids=["form-feed", "line-separator-in-comment"])
def test_error_lines_inside_the_file(text):
    """Regression, same cause: "network\\x0c " gave fuzz.cnn:2:2 in a 1-line file."""
    err = check_text(text, tolerate=False)
    assert isinstance(err, CnnDslError) and err.span.line <= text.count("\n") + 1


# ============================================================================================
# the contract's own machinery: it must be able to fail
# ============================================================================================

def test_a_case_that_spins_is_interrupted_after_its_cpu_time():
    def spin():
        while True:
            pass

    with pytest.raises(AssertionError, match=r"hang: still running after 0.2 s of CPU time"):
        contract(spin, "", hard_cpu_s=0.2, tolerate=False)


def test_a_case_over_its_cpu_budget_fails_the_contract():
    def slow():
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        return cnndsl.parse("input 8\nrelu\n")

    with pytest.raises(AssertionError, match=r"took 0\.\d\d s of CPU \(contract: ~0.01 s per case\)"):
        contract(slow, "", cpu_s=0.01, tolerate=False)


# ============================================================================================
# the CLI edge: exit 1, a located error on stderr, no traceback
# ============================================================================================

CLI_CASES = {
    "syntax": (b"input 1x8x8\nconv 8 3 )\n", True),
    "check": (b"input 1x8x8\nconv 8 9x9\n", True),
    "unknown-layer": (b"input 1x8x8\nblock b() { c }\nb\n", True),
    "nesting-bomb": (b"input 1x8x8\n" + b"{" * 5000, True),
    "empty": (b"", True),
    "invalid-utf8": (b"input 1x8x8\n\xff\n", False),
}


def _cli_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnndsl", "check", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("data, located", list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_cli_check_reports_errors_cleanly(tmp_path, data, located):
    path = tmp_path / "bad.cnn"
    path.write_bytes(data)
    r = _cli_check(path)
    assert r.returncode == 1, r
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    pattern = re.escape(str(path)) + (r":\d+:\d+: error: " if located else r":( \d+:\d+:)? error: ")
    assert re.match(pattern, r.stderr), r.stderr


def test_cli_check_huge_literal(tmp_path):
    """Regression: a 4301-digit integer literal crashed `cnndsl check` with a traceback."""
    path = tmp_path / "bad.cnn"
    path.write_text("input " + "1" * 4301 + "\n", encoding="utf-8")
    r = _cli_check(path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert re.match(re.escape(str(path)) + r":\d+:\d+: error: ", r.stderr), r.stderr
