"""The Python API documents itself: every public name has a docstring with an example, and the examples run.

The examples are doctests, run here in a scratch folder that sees the repository's specs/, so the files they
write (lenet5.onnx, models/, ...) stay out of the checkout.
"""

from __future__ import annotations

import doctest
import inspect
import os

import numpy as np
import pytest
from helpers import ROOT

import cnndsl
from cnndsl import api
from cnndsl.views import notebook

PUBLIC_CLASSES = [api.Network, api.CheckedGraph, api.CompileOptions, api.CompileResult, notebook.Diagram,
                  notebook.Chart]


def _public_members():
    for name in cnndsl.__all__:
        if name != "__version__":
            yield f"cnndsl.{name}", getattr(cnndsl, name)
    for cls in PUBLIC_CLASSES:
        for name, member in vars(cls).items():
            if name.startswith("_") and name != "__call__":
                continue
            if isinstance(member, (property, classmethod, staticmethod)) or inspect.isfunction(member):
                yield f"{cls.__name__}.{name}", member


MEMBERS = list(_public_members())


@pytest.mark.parametrize("name, member", MEMBERS, ids=[m[0] for m in MEMBERS])
def test_every_public_name_has_a_docstring_with_an_example(name, member):
    target = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
    doc = inspect.getdoc(target.fget if isinstance(target, property) else target) or ""
    if name.endswith(".of"):  # a constructor helper: documented, its example is the class's
        assert doc
        return
    assert doc, f"{name} has no docstring"
    assert ">>>" in doc, f"{name}'s docstring has no example"


DOCTESTS = [t for module in (api, notebook) for t in doctest.DocTestFinder().find(module) if t.examples]


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name.split(".", 2)[-1] for t in DOCTESTS])
def test_the_examples_run(test, tmp_path, monkeypatch):
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    monkeypatch.chdir(tmp_path)
    test.globs.update(cnndsl=cnndsl, np=np, os=os)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    result = runner.run(test, out=out.append)
    assert result.failed == 0, "".join(out)


def test_dir_shows_only_the_public_api():
    assert dir(cnndsl) == sorted(cnndsl.__all__)
    assert all(not name.startswith("_") or name == "__version__" for name in dir(cnndsl))


def test_the_package_says_it_is_typed():
    assert (ROOT / "cnndsl" / "py.typed").is_file()
