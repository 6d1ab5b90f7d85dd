"""The layering rules (pyproject.toml's [tool.importlinter] contracts) hold, and break when broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install '.[test]')")


def _lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_import_rules_hold():
    proc = _lint(ROOT, ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("model/ir.py", "import numpy", "params stays fast"),
    ("lang/syntax.py", "from cnndsl.layers import REGISTRY", "knows no semantics"),
    ("views/graph.py", "import onnx", "views never import onnx"),
    ("errors.py", "import click", "errors import nothing that renders"),
    ("onnx/compile.py", "from cnndsl.cli import main", "nothing imports the command line"),
    ("cli/run.py", "from cnndsl.runtime.run import Runner", "uses only the API"),
])
def test_a_broken_rule_fails_the_lint(tmp_path, module, line, contract):
    shutil.copytree(ROOT / "cnndsl", tmp_path / "cnndsl", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "cnndsl" / module
    target.write_text(line + "  # a deliberate violation\n" + target.read_text())
    proc = _lint(tmp_path, tmp_path)
    assert proc.returncode != 0
    assert f"{contract}" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout[-3000:]
