"""Shared fixtures: the CLI runner, models compiled once per session, the golden-file flag.

Plain helpers (paths, error-table rows, CPU-time measurement) are in helpers.py.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from helpers import SPECS


def pytest_configure(config):
    """Commands the tests start must take Ctrl-C, SIGTERM and SIGHUP as a user's would: a suite run
    where they are ignored (in a shell's background, under nohup) would pass that on to every
    command it starts, and cnndsl rightly keeps a signal its caller ignores."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/* from the current output (review the diff)")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


@pytest.fixture
def cli():
    """Run a cnndsl command in this process: ``cli("compile", path, "-o", out)`` returns click's
    Result (exit_code, stdout, stderr, output). Arguments may be paths or numbers; ``input`` is
    standard input. An exception the command does not handle fails the test with its traceback
    (a command must turn every error into a message and an exit code)."""
    from cnndsl.cli import main

    runner = CliRunner()

    def invoke(*args, input: str | bytes | None = None):
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """``compiled(spec, **options)``: the path of specs/SPEC.cnn compiled to a file with seed 0 (and
    ``options`` for CompileOptions, e.g. fold_bn=True), once per session, for every test that
    needs that model as a file (test_interop, test_specs' reference evaluator, ...): ask here
    rather than compile a shipped spec again. The files are removed when the session ends."""
    import cnndsl
    from cnndsl.api import CompileOptions

    folder = tmp_path_factory.mktemp("compiled")
    paths = {}

    def compile_once(spec: str, **options):
        key = (spec, tuple(sorted(options.items())))
        if key not in paths:
            stem = "-".join([spec] + [f"{k}-{v}" for k, v in sorted(options.items())])
            path = folder / f"{stem}.onnx"
            cnndsl.load(SPECS / f"{spec}.cnn").compile(CompileOptions(seed=0, output=path, **options))
            paths[key] = path
        return paths[key]

    yield compile_once
    shutil.rmtree(folder, ignore_errors=True)
