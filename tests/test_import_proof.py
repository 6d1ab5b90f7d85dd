"""The proof of `cnndsl import` (cnndsl/importer/__init__.py), and what it costs: the plain spec is
built as syntax (importer.plain) rather than written and parsed; what is written is always parsed
and checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cnndsl.api import Network, import_onnx, parse
from cnndsl.importer.factor import Factored
from cnndsl.importer.plain import Unwritten, plain_spec
from cnndsl.lang.parse import _parser
from cnndsl.model.check import check

FIXTURES = Path(__file__).parent / "fixtures" / "import"
importer = sys.modules["cnndsl.importer"]


@pytest.fixture
def parsed(monkeypatch):
    """The texts lark reads as whole specs while the test runs."""
    parser, texts = _parser(), []
    real = parser.parse

    def counting(text, start=None, *args, **kwargs):
        if start == "start":
            texts.append(text)
        return real(text, start, *args, **kwargs)

    monkeypatch.setattr(parser, "parse", counting)
    return texts


def _bodies(path):
    """The statements import proves, as in importer._imported: labelled by the model's names, and not."""
    from cnndsl.importer import build, lift, load_source, naming

    source = load_source(str(path))
    stmts = build(source, *lift(source))
    labelled = [naming.label(importer._clone(stmts))] if naming.meaningful(stmts) else []
    return source, labelled + [naming.structure(importer._clone(stmts))]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.onnx")))
def test_the_plain_syntax_is_what_its_text_parses_to(name):
    """Node for node (names, kinds, layers, inputs, shapes), for both ways of labelling."""
    source, bodies = _bodies(FIXTURES / name)
    for body in bodies:
        text = importer._spec_text(source, Factored(body), "net", canonical=False)
        want = parse(text).graph
        got = Network(check(plain_spec(body, "net", source.input_shape, "<plain>"))).graph
        importer._same(got, want)
        assert got.output_shape == want.output_shape


def test_only_the_factored_spec_is_parsed(compiled, parsed):
    """ResNet-50's plain spec (every layer written out, 4 times as long) is checked from its syntax;
    lark reads the factored spec only: to format it, and to prove it."""
    model = compiled("resnet50")
    parsed.clear()
    imported = import_onnx(model)
    assert "block res_block" in imported.spec
    assert parsed and all("block res_block" in text for text in parsed)
    assert parsed[-1] == imported.spec


def test_a_written_plain_spec_is_parsed_and_proven(parsed):
    """Where there are no blocks, the plain spec is what is written: its text is proven."""
    imported = import_onnx(FIXTURES / "lenet-legacy-opset13.onnx")
    assert "block " not in imported.spec
    assert parsed[-1] == imported.spec


def test_what_the_syntax_cannot_hold_is_proven_from_the_text(compiled, monkeypatch, parsed):
    model = compiled("resnet18")
    want = import_onnx(model).spec

    def unwritten(*args):
        raise Unwritten("a label")

    monkeypatch.setattr(importer, "plain_spec", unwritten)
    parsed.clear()
    assert import_onnx(model).spec == want
    assert [i for i, text in enumerate(parsed) if "block " not in text] == [0]  # the plain text, then the factored
