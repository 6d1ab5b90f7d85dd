"""The parser's generated tables (cnndsl/lang/grammar_tables.py): current, equivalent to a parser
built from the grammar, and never needed for correctness."""

from __future__ import annotations

import functools

import pytest
from helpers import ROOT
from lark import Lark

from cnndsl.lang import parsertables
from cnndsl.lang.parse import _PostLex

SPECS = sorted((ROOT / "specs").glob("*.cnn"))

BROKEN = [
    "network x\ninput 3x32x32\nconv 16 3x3 relu )\n",
    "network x\ninput 3x32x32\nblock b(c) {\n conv c 3x3\n",
    "network x\ninput 3x32x32\nconv 16 3x3 stride=\n",
    "network x\ninput 3x32x32\nrepeat 2 { conv 8 3x3 } }\n",
    "network x\ninput 3x32x32\nconv [[1, 2], [3\n",
    "network x\ninput 3x32x32\nconv 8 3x3 @\n",
]


def test_the_generated_tables_match_the_grammar():
    assert parsertables.tables_are_current(), "run python tools/regen.py"


@functools.cache
def _both():
    """The parser from the tables and one built from the grammar, made once (building takes 0.2 s)."""
    loaded = parsertables.make_parser(propagate_positions=True, postlex=_PostLex())
    built = Lark(parsertables.grammar_text(), **parsertables.TABLE_OPTIONS, propagate_positions=True,
                 postlex=_PostLex())
    return loaded, built


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_tables_parse_every_shipped_spec_as_the_grammar_does(spec):
    loaded, built = _both()
    text = spec.read_text()
    assert loaded.parse(text, start="start") == built.parse(text, start="start")


@pytest.mark.parametrize("text", BROKEN)
def test_tables_reject_broken_specs_where_the_grammar_does(text):
    loaded, built = _both()
    errors = []
    for parser in (loaded, built):
        with pytest.raises(Exception) as info:
            parser.parse(text, start="start")
        exc = info.value
        errors.append((type(exc), getattr(exc, "line", None), getattr(exc, "column", None),
                       sorted(getattr(exc, "expected", None) or ())))
    assert errors[0] == errors[1]


def test_stale_tables_fall_back_to_the_grammar(monkeypatch):
    parsertables._tables.cache_clear()
    monkeypatch.setattr(parsertables, "grammar_digest", lambda text: "edited")
    try:
        assert not parsertables.tables_are_current()
        parser = parsertables.make_parser(propagate_positions=True, postlex=_PostLex())
        assert parser.parse(SPECS[0].read_text(), start="start")
    finally:
        parsertables._tables.cache_clear()


def test_options_fixed_in_the_tables_cannot_be_passed():
    with pytest.raises(ValueError, match="maybe_placeholders"):
        parsertables.make_parser(maybe_placeholders=False)


def test_loading_the_tables_is_much_cheaper_than_building_the_parser():
    """CPU time, not wall time: the point of the tables is that `params` stays fast."""
    import time

    def cpu(fn, n=3):
        best = float("inf")
        for _ in range(n):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        return best

    def load():
        parsertables._tables.cache_clear()
        parsertables.make_parser(propagate_positions=True, postlex=_PostLex())

    built = cpu(lambda: Lark(parsertables.grammar_text(), **parsertables.TABLE_OPTIONS, postlex=_PostLex()))
    assert cpu(load) < built / 2


def test_one_parser_serves_parse_and_fmt():
    """Loading a parser from the tables costs about as much as parsing ResNet-50: fmt reads its
    tokens, comments included, through parse.py's parser rather than a second one."""
    import subprocess
    import sys

    code = ("import lark, sys\nloads = []\nreal = lark.Lark._load_from_dict.__func__\n"
            "lark.Lark._load_from_dict = classmethod(lambda cls, *a, **k: loads.append(1) or real(cls, *a, **k))\n"
            "from cnndsl.lang.fmt import format_text, tokens\n"
            "text = open(sys.argv[1]).read()\n"
            "assert format_text(text) and any(t.kind == 'COMMENT' for t in tokens(text))\n"
            "print(len(loads))\n")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "resnet50.cnn")], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "1"
