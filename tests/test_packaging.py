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


def test_the_installed_package_finds_its_data(tmp_path):
    """Run from outside the checkout, Python imports the installed cnndsl (CI installs it with a plain
    `pip install .`): its shipped specs, class names and the playground's files are there."""
    import subprocess
    import sys

    probe = ("from cnndsl.serve import work, app; from cnndsl.views import labels; "
             "print(len(work.listing(work.shipped_folder())), len(labels.load_labels('imagenet')), "
             "sorted(p.name for p in app.STATIC.iterdir()))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    specs, names, static = done.stdout.split(" ", 2)
    assert int(specs) == len(list((ROOT / "specs").glob("*.cnn"))) and int(names) == 1000
    assert all(name in static for name in ("app.js", "index.html", "style.css", "THIRD-PARTY-LICENSES.txt"))


def test_the_shipped_specs_are_found_in_either_layout(tmp_path):
    from cnndsl.serve import work

    installed = tmp_path / "site" / "cnndsl"
    (installed / "specs").mkdir(parents=True)
    assert work.shipped_folder(installed) == installed / "specs"
    source = tmp_path / "tree"
    (source / "cnndsl").mkdir(parents=True)
    (source / "specs").mkdir()
    assert work.shipped_folder(source / "cnndsl") == source / "specs"
