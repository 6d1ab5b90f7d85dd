"""Files generated from the sources (tools/regen.py): current, and their checks can fail."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from helpers import ROOT

from cnndsl.layers import REGISTRY

SPEC = importlib.util.spec_from_file_location("regen", ROOT / "tools" / "regen.py")
regen = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(regen)


def test_every_generated_file_is_current():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "regen.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("generator", ["readme", "textmate"])
def test_a_new_kind_makes_the_docs_stale(monkeypatch, generator):
    from cnndsl.layers.activation import Relu

    monkeypatch.setitem(REGISTRY, "brandnew", Relu)
    path, text = getattr(regen, generator)()
    assert text is not None and "brandnew" in text


def test_the_table_follows_a_class_attribute(monkeypatch):
    from cnndsl.layers.pool import MaxPool

    monkeypatch.setattr(MaxPool, "onnx_ops", "MaxPool (changed)")
    _, text = regen.readme()
    assert "| MaxPool (changed) |" in text


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_states_what_the_table_needs(kind):
    cls = REGISTRY[kind]
    assert cls.onnx_ops, f"{cls.__name__} needs onnx_ops"
    assert cls.counts
    assert kind in regen.layer_table()
