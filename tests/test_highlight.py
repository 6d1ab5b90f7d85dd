"""Syntax highlighting: the Pygments lexer (found by its entry point, clean on every shipped spec)
and the TextMate grammar for editors, both kept in sync with the grammar and the layer registry."""

from __future__ import annotations

import json
import re

import pytest
from helpers import ROOT, SPECS
from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String

from cnndsl.layers import REGISTRY
from cnndsl.views.highlight import CnnDslLexer, grammar_keywords, layer_kinds

ALL_SPECS = sorted(SPECS.glob("*.cnn"))
TM_PATH = ROOT / "editors" / "cnndsl.tmLanguage.json"


def test_keywords_are_the_grammars_words():
    assert set(grammar_keywords()) == {"network", "variant", "input", "block", "repeat", "as", "concat", "split",
                                       "residual", "shortcut", "gate", "if", "else", "and", "or", "not", "from",
                                       "output", "add", "mul", "train"}
    assert set(layer_kinds()) == set(REGISTRY)


# -- Pygments ----------------------------------------------------------------------------------

def test_the_entry_point_finds_the_lexer():
    for alias in ("cnndsl", "cnn"):
        assert type(get_lexer_by_name(alias)).__name__ == "CnnDslLexer"
    assert find_lexer_class_for_filename("specs/lenet5.cnn").__name__ == "CnnDslLexer"


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_lexes_cleanly_and_round_trips(path):
    text = path.read_text(encoding="utf-8")
    lexer = CnnDslLexer()
    assert "".join(value for _, _, value in lexer.get_tokens_unprocessed(text)) == text
    assert [v for t, v in lexer.get_tokens(text) if t in Error] == []


def _tokens(text: str) -> list[tuple[object, str]]:
    return [(t, v) for t, v in CnnDslLexer().get_tokens(text) if v.strip()]


def test_token_types_of_the_constructs():
    text = ('network lenet5 "LeNet-5" year=1998  # header\ninput 1x32x32\n'
            'block unit(c, stride=1) {\n  conv: conv c*2 3x3 stride=stride relu; bias=false\n'
            '  residual { relu } shortcut down { conv c 1 pad=(0, 1) }\n}\n'
            'layer1: repeat 2 unit 64\nfixedconv [[-1, 0.5], [1e-4, 2]] \\\n  bias=true\n')
    toks = _tokens(text)
    expect = [
        ("network", Keyword.Declaration), ("lenet5", Name.Namespace), ('"LeNet-5"', String.Double),
        ("year", Name.Attribute), ("=", Operator), ("1998", Number.Integer), ("# header", Comment.Single),
        ("input", Keyword), ("1x32x32", Number), ("block", Keyword.Declaration), ("unit", Name.Function),
        ("conv", Name.Label), (":", Punctuation), ("*", Operator), ("3x3", Number), ("relu", Name.Builtin),
        ("false", Keyword.Constant), ("residual", Keyword), ("shortcut", Keyword), ("down", Name.Label),
        ("{", Punctuation), ("layer1", Name.Label), ("repeat", Keyword), ("fixedconv", Name.Builtin),
        ("0.5", Number.Float), ("1e-4", Number.Float), ("\\", Punctuation), ("true", Keyword.Constant),
    ]
    for value, kind in expect:
        kinds = {t for t, v in toks if v == value}
        assert kind in kinds, (value, kinds)
    assert (Name.Builtin, "conv") in toks  # the kind after the label `conv:`
    assert (Name, "c") in toks and (Name, "unit") in toks  # a parameter, a block call


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_layer_kind_is_highlighted(kind):
    assert _tokens(f"{kind} 3\n")[0] == (Name.Builtin, kind)
    assert _tokens(f"{kind}x 3\n")[0] == (Name, f"{kind}x")  # not a prefix of a longer name


def test_errors_are_shown():
    assert any(t in Error for t, _ in _tokens('conv 3 @ "open\n'))


def test_guess_prefers_cnndsl_for_a_spec():
    assert CnnDslLexer.analyse_text((SPECS / "lenet5.cnn").read_text(encoding="utf-8")) > 0
    assert CnnDslLexer.analyse_text("print('hello')\n") == 0


# -- TextMate ----------------------------------------------------------------------------------

def _grammar() -> dict:
    return json.loads(TM_PATH.read_text(encoding="utf-8"))


def _rules(node):
    """Every dict in the grammar (its rules and their captures), nested ones included."""
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _patterns(grammar):
    """Every (name, regex) in the grammar, nested patterns included."""
    for rule in _rules(grammar):
        for key in ("match", "begin", "end"):
            if key in rule:
                yield rule.get("name", key), rule[key]


def test_textmate_grammar_has_the_required_keys():
    g = _grammar()
    assert g["scopeName"] == "source.cnndsl" and g["fileTypes"] == ["cnn"] and g["name"] == "cnndsl"
    assert g["patterns"] and g["repository"]
    for include in [rule["include"] for rule in _rules(g) if "include" in rule]:
        assert include.startswith("#") and include[1:] in g["repository"], include


def test_textmate_regexes_compile():
    found = list(_patterns(_grammar()))
    assert len(found) > 10
    for name, regex in found:  # these patterns stay within what Python's re and Oniguruma share
        try:
            re.compile(regex)
        except re.error as exc:
            pytest.fail(f"{name}: {regex!r} does not compile: {exc}")


def _first_scope(text: str) -> str | None:
    """The scope the grammar gives the word at the start of ``text`` (first pattern that matches)."""
    g = _grammar()
    for ref in g["patterns"]:
        rule = g["repository"][ref["include"][1:]]
        for pattern in rule.get("patterns", [rule]):
            m = re.match(pattern["match"], text)
            if m:
                return pattern.get("name") or pattern["captures"]["1"]["name"]
    return None


def test_textmate_layer_kinds_match_the_registry():
    regex = _grammar()["repository"]["layer-kind"]["match"]
    want = r"\b(" + "|".join(layer_kinds()) + r")\b"
    assert regex == want, f"update the layer-kind pattern in {TM_PATH.name} to {json.dumps(want)}"
    for kind in REGISTRY:
        assert re.fullmatch(regex, kind), kind
        assert _first_scope(f"{kind} 3") == "support.function.layer.cnndsl", kind
    assert not re.fullmatch(regex, "convx")


def test_textmate_keywords_match_the_grammar():
    words = set()
    for pattern in _grammar()["repository"]["keyword"]["patterns"]:
        words |= set(re.fullmatch(r"\\b\((.*)\)\\b", pattern["match"]).group(1).split("|"))
    assert words == set(grammar_keywords())
    for word in grammar_keywords():
        assert _first_scope(f"{word} {{").startswith("keyword."), word


def test_textmate_scopes_of_the_constructs():
    for text, scope in [("# c", "comment.line.number-sign.cnndsl"), ('"t"', "string.quoted.double.cnndsl"),
                        ("conv1: conv", "entity.name.label.cnndsl"), ("stride=2", "variable.parameter.cnndsl"),
                        ("3x3", "constant.numeric.size.cnndsl"), ("1e-4", "constant.numeric.float.cnndsl"),
                        ("64", "constant.numeric.integer.cnndsl"), ("block unit(c)", "storage.type.block.cnndsl"),
                        ("true", "constant.language.cnndsl"), ("//", "keyword.operator.arithmetic.cnndsl"),
                        ('"denselayer{i+1}": x', "entity.name.label.cnndsl"), ("_: b 64", "entity.name.label.cnndsl"),
                        ("==", "keyword.operator.comparison.cnndsl"), ("and", "keyword.operator.logical.cnndsl"),
                        ("if", "keyword.control.cnndsl"), ("variant", "keyword.other.cnndsl")]:
        assert _first_scope(text) == scope, text
