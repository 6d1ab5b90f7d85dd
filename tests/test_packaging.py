"""A plain (non-editable) `pip install .` ships every module and asset of the source tree.

The suite imports cnndsl from the checkout, so a package left out of pyproject.toml's list would pass every
other test and still be missing for a user: `cnndsl import` was, until this test.
"""

from __future__ import annotations

import fnmatch

import pytest
from helpers import ROOT

tomllib = pytest.importorskip("tomllib")

CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _source_packages() -> set[str]:
    found = set()
    for init in (ROOT / "cnndsl").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_subpackage_is_installed():
    missing = _source_packages() - set(CONFIG["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"


def _data_files(folder):
    """Files under a package's folder that belong to it (not to a subpackage) and are not Python."""
    for path in folder.iterdir():
        if path.is_dir():
            if path.name != "__pycache__" and not (path / "__init__.py").exists():
                yield from _data_files(path)
        elif path.suffix not in (".py", ".pyc"):
            yield path


def test_every_asset_is_installed():
    """Files that are not Python inside a package (grammars, the playground's scripts and styles) are package data."""
    dirs = dict(CONFIG.get("package-dir", {}))
    data = CONFIG.get("package-data", {})
    for package in CONFIG["packages"]:
        folder = ROOT / dirs.get(package, package.replace(".", "/"))
        for path in _data_files(folder):
            name = path.relative_to(folder).as_posix()
            patterns = data.get(package, [])
            assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{package}: {name} is not package data"
