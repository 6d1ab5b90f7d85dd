"""The limits (cnndsl/lang/limits.py): resource bombs are refused early, with a located error.

"Early" is CPU time against parsing specs/resnet50.cnn (helpers.parse_cost), not seconds on the
wall clock, which a busy machine stretches; benchmarks/limits.py prints the seconds.
"""

from __future__ import annotations

import pytest
from helpers import cpu_seconds, parse_cost

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.lang import limits

CHAIN = "\n".join(f"block b{i}() {{ b{i + 1} }}" for i in range(60)) + "\nblock b60() { relu }\n"
DEEP_GROUPS = "".join(f"block b{i}() {{ {'{' * 40} b{i + 1} {'}' * 40} }}\n" for i in range(45)) + \
    "block b45() { relu }\n"

BOMBS = [
    # (id, spec text, message substring, line, col)
    ("huge-repeat", "input 1x8x8\nrepeat 1000000000 conv 8 3x3\n", "exceeds the limit of 20,000 layers", 2, 8),
    ("repeat-times-repeat", "input 1x8x8\nrepeat 1000 { repeat 1000 relu }\n", "more than 20,000 layers", 2, 27),
    ("self-instantiating-block", "input 1x8x8\nblock a() { a }\na\n", "block 'a' calls itself (a -> a)", 2, 13),
    ("block-chain", "input 1x8x8\n" + CHAIN + "b0\n", "blocks nest more than 50 deep", 51, 15),
    ("nested-braces", "input 1x8x8\n" + "{" * 3000 + "relu" + "}" * 3000 + "\n", "nest more than 50 deep", 2, 51),
    ("nested-parens", "input 1x8x8\nconv 1 " + "(" * 3000 + "3" + ")" * 3000 + "\n", "nest more than 50", 2, 58),
    ("nested-lists", "input 1x8x8\nfixedconv " + "[" * 3000 + "1" + "]" * 3000 + "\n", "nest more than 50", 2, 61),
    ("arithmetic-chain", "input 1x8x8\nconv " + "+".join(["1"] * 10_000) + " 3\n",
     "more than 200 arithmetic operators", 2, 407),
    ("huge-image", "input 1x1000000x1000000\nrelu\n", "has 1,000,000,000,000 values per sample", 1, 7),
    ("deep-groups-across-blocks", "input 1x8x8\n" + DEEP_GROUPS + "b0\n", "nest too deeply", 0, 0),
]


@pytest.mark.parametrize("text, message, line, col", [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS])
def test_bombs_refused_quickly_with_a_location(text, message, line, col):
    def refuse():
        with pytest.raises(CnnDslError) as info:
            cnndsl.parse(text, path="bomb.cnn")
        return info

    info = refuse()
    assert cpu_seconds(refuse) < 100 * parse_cost()  # the largest takes ~20
    err = info.value
    assert message in err.message
    assert err.span is not None
    if line:
        assert (err.span.line, err.span.col) == (line, col)
    assert err.render().startswith("bomb.cnn:")


def test_ten_megabyte_spec_refused_before_parsing(monkeypatch):
    from cnndsl.lang import parse

    text = "input 1x8x8\n" + "relu\n" * 2_000_000
    monkeypatch.setattr(parse, "_parser", lambda: pytest.fail("the spec was handed to the parser"))

    def refuse():
        with pytest.raises(CnnDslError, match="the limit is 64,000"):
            cnndsl.parse(text, path="big.cnn")

    assert cpu_seconds(refuse) < 100 * parse_cost()  # ~20: it is measured, and its lines counted


def test_counting_a_trillion_parameter_dense_layer_is_instant():
    net = cnndsl.parse("input 1000000\ndense 1000000\n")
    assert net.totals.params == 1_000_000 * 1_000_000 + 1_000_000
    assert cpu_seconds(lambda: cnndsl.parse("input 1000000\ndense 1000000\n").totals) < parse_cost()
    from cnndsl.errors import CompileError

    with pytest.raises(CompileError, match="cannot compile"):
        net.compile()
    huge = cnndsl.parse("input 1x8x8\nconv 999999999999999999 3\n")  # 18 digits: counts exactly
    assert huge.totals.params == 999999999999999999 * 10
    with pytest.raises(CompileError, match="cannot compile"):
        huge.compile()
    with pytest.raises(CnnDslError, match="too large") as info:  # 19 digits: refused where written
        cnndsl.parse("input 1x8x8\nconv 9999999999999999999 3\n")
    assert (info.value.span.line, info.value.span.col) == (2, 6)


def test_limits_can_be_raised_by_environment(monkeypatch):
    monkeypatch.setattr(limits, "MAX_LAYERS", 2_000_000)
    net = cnndsl.parse("input 4\nrepeat 30000 relu\n")
    assert len(net.graph.nodes) == 30_000


def test_long_lines_are_excerpted_around_the_caret():
    err = pytest.raises(CnnDslError, cnndsl.parse, "input 1x8x8\nconv " + "+".join(["1"] * 1000) + " 3\n").value
    source_line, caret_line = err.span.excerpt().splitlines()
    assert len(source_line) < 130 and source_line.split("| ")[1].startswith("...")
    assert source_line[caret_line.index("^")] == "+"
