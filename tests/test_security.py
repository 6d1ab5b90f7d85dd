"""Untrusted files in shared folders: no cnndsl command unpickles, or reads a file from the shared
temp folder that it did not create (issue 14, item 1: lark's cache=True pickle-loaded a predictable
file there, so any local user could run code in every later cnndsl command)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT, SPECS

# Runs the CLI in a child with an audit hook: every unpickled global and every file opened under
# the temp folder is recorded (the child's own mkstemp/mkdtemp files are fine: cnndsl made them).
AUDITED = textwrap.dedent("""
    import os, sys, tempfile
    log, tmp = sys.argv[1], os.path.realpath(tempfile.gettempdir())
    made, seen = set(), []
    def hook(event, args):
        if event == "pickle.find_class":
            seen.append(f"unpickled {args[0]}.{args[1]}")
        elif event == "tempfile.mkstemp" or event == "tempfile.mkdtemp":
            made.add(os.path.realpath(args[0]))
        elif event == "open" and isinstance(args[0], (str, bytes)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if path.startswith(tmp + os.sep) and not any(path == m or path.startswith(m + os.sep) for m in made):
                seen.append(f"opened {path}")
    sys.addaudithook(hook)
    import atexit
    atexit.register(lambda: open(log, "w").write("\\n".join(seen)))
    from cnndsl.cli import main
    sys.argv = ["cnndsl"] + sys.argv[2:]
    main()
""")


def _run_audited(tmp_path: Path, *args: str, env_extra: dict | None = None):
    shared = tmp_path / "shared-tmp"
    shared.mkdir(exist_ok=True)
    script, log = tmp_path / "audited.py", tmp_path / "audit.log"
    script.write_text(AUDITED)
    env = {**os.environ, "TMPDIR": str(shared), "MPLCONFIGDIR": str(tmp_path / "mpl"), **(env_extra or {})}
    proc = subprocess.run([sys.executable, str(script), str(log), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc, (log.read_text().splitlines() if log.exists() else ["(no audit log: the child died)"])


COMMANDS = [
    ("check", ["check", str(SPECS / "resnet50.cnn")]),
    ("params", ["params", str(SPECS / "lenet5.cnn")]),
    ("summary", ["summary", str(SPECS / "googlenet.cnn")]),
    ("fmt", ["fmt", "--check", str(SPECS / "alexnet.cnn")]),
    ("compile-run", ["compile", str(SPECS / "lenet5.cnn"), "-o", "l.onnx"]),
    ("graph", ["graph", str(SPECS / "lenet5.cnn"), "-o", "l.dot"]),
    ("quantize", ["compile", str(SPECS / "lenet5.cnn"), "--quantize", "int8", "-o", "q.onnx"]),
    ("export", ["export", str(SPECS / "lenet5.cnn"), "--triton", "models"]),
    ("plot", ["plot", str(SPECS / "lenet5.cnn"), str(SPECS / "alexnet.cnn"), "-o", "chart.png"]),
]


@pytest.mark.parametrize("args", [c[1] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_no_command_unpickles_or_reads_the_shared_temp_folder(tmp_path, args):
    proc, seen = _run_audited(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert seen == []


def test_run_of_a_compiled_model_reads_nothing_from_the_shared_temp_folder(tmp_path):
    proc, _ = _run_audited(tmp_path, "compile", str(SPECS / "lenet5.cnn"), "-o", "l.onnx")
    assert proc.returncode == 0, proc.stderr
    proc, seen = _run_audited(tmp_path, "run", "l.onnx")
    assert proc.returncode == 0, proc.stderr
    assert seen == []


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _lark_cache_names(folder: Path) -> list[Path]:
    """The files lark's cache=True would read for the parsers cnndsl used to build that way."""
    import tempfile

    from lark import Lark

    from cnndsl.lang.parse import _PostLex, grammar_text

    old = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        post = _PostLex()
        Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True,
             postlex=post, lexer_callbacks={"COMMENT": post.comment}, cache=True)
        Lark(grammar_text(), parser="lalr", postlex=post, cache=True,  # fmt's own, before it shared parse.py's
             lexer_callbacks={"COMMENT": post.comment})
    finally:
        tempfile.tempdir = old
    return sorted(folder.glob(".lark_cache*"))


def test_a_planted_lark_cache_is_never_loaded(tmp_path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    names = _lark_cache_names(shared)
    assert names, "lark no longer writes a cache file: rewrite this test's planting"
    marker = tmp_path / "pwned"
    for name in names:  # the format lark reads: a hash line, then pickles
        name.write_bytes(name.read_bytes().split(b"\n", 1)[0] + b"\n" + pickle.dumps(_Evil(str(marker))))
    for args in (["check", str(SPECS / "lenet5.cnn")], ["fmt", "--check", str(SPECS / "lenet5.cnn")]):
        proc, seen = _run_audited(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
        assert not marker.exists(), f"cnndsl {args[0]} ran code from a planted lark cache"
        assert seen == []


@pytest.mark.parametrize("args", [["run", "specs/lenet5.cnn"], ["bench", "specs/lenet5.cnn", "--runs", "1"],
                                  ["compile", "specs/lenet5.cnn", "--quantize", "int8", "-o", "{tmp}/q.onnx"]],
                         ids=["run", "bench", "int8"])
def test_nothing_is_left_in_the_shared_temp_folder(tmp_path, args):
    """onnxruntime's native library writes `$TMPDIR/.ses` when it loads: cnndsl loads it with a
    private temp folder of its own, removed afterwards."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    env = {**os.environ, "TMPDIR": str(shared), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "cnndsl", *argv], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.name for p in shared.iterdir()) == []
