"""Expressions (cnndsl/lang/values.py): arithmetic, comparisons, conditions, built-in functions,
the input's sizes (in_channels, in_height, in_width), and --set values.

Each row evaluates one expression as a block argument, through the whole front end (parse, check),
and reads the value back from the layer it built: `dense EXPR` on a flat input gives EXPR units.
"""

from __future__ import annotations

import pytest
from helpers import assert_error, err

import cnndsl
from cnndsl.api import parse_settings
from cnndsl.errors import CnnDslError
from cnndsl.lang.values import make_divisible


def units(expr: str, input_line: str = "input 12", params: str = "") -> int:
    """The value of ``expr`` as a dense layer's width (so it must be a positive integer)."""
    net = cnndsl.parse(f"network t{params}\n{input_line}\ndense ({expr})\n")
    return net.graph.nodes[-1].out_shape[0]


VALUES = [
    ("2*3+1", 7),
    ("7//2", 3),
    ("max(3, 9, 4)", 9),
    ("min(3, 9)", 3),
    ("ceil(2.1)", 3),
    ("floor(2.9)", 2),
    ("round(2.5)", 2),  # ties to even, as Python's round (RegNet's widths)
    ("round(3.5)", 4),
    ("int(7.9)", 7),
    ("abs(-5)", 5),
    ("make_divisible(32*1.1, 8)", 32),  # torchvision: _make_divisible(35.2, 8) == 32
    ("make_divisible(16*0.5, 8)", 8),
    ("make_divisible(12, 8, 4)", 16),
    ("make_divisible(20*0.75, 8)", 16),
    ("5 if 2 > 1 else 6", 5),
    ("5 if 2 < 1 else 6", 6),
    ("4 if 1 == 1 and not 2 == 3 else 9", 4),
    ("4 if 1 == 2 or 3 != 3 else 9", 9),
    ("4 if relu == relu else 9", 4),  # words compare as words
    ("4 if 2 == 2.0 else 9", 4),  # numbers as numbers
    ("4 if 2 == two else 9", 9),  # a number is never a word
    ("in_channels*2", 24),
    ("(ceil(in_channels*1.5))", 18),
]


@pytest.mark.parametrize("expr, value", VALUES, ids=[v[0] for v in VALUES])
def test_value(expr, value):
    assert units(expr) == value


def test_make_divisible_is_torchvisions_rule():
    # torchvision.models._utils._make_divisible, restated: the nearest multiple, never 10% below
    for v in [3, 8, 11.9, 16, 17.6, 24 * 1.4, 40 * 1.8, 112 * 2.0, 1280 * 1.2, 0.1]:
        for d in (4, 8):
            new = max(d, int(v + d / 2) // d * d)
            new += d if new < 0.9 * v else 0
            assert make_divisible(v, d) == new


def test_in_sizes_read_the_statements_input():
    g = cnndsl.parse("input 3x10x6\nconv in_channels*4 1x1\nconv in_height+in_width 1x1\n"
                     "conv in_channels 3x3 groups=in_channels\n").graph
    assert [n.out_shape[0] for n in g.nodes] == [12, 16, 16]
    assert g.nodes[2].layer.groups == 16


def test_a_parameter_hides_an_input_size():
    g = cnndsl.parse("input 3x8x8\nblock b(in_channels) { conv in_channels 1x1 }\nb 5\n").graph
    assert g.nodes[0].out_shape[0] == 5


def test_block_default_reads_the_calls_input():
    g = cnndsl.parse("input 3x8x8\nblock b(c=in_channels*2) { conv 4 1x1; conv c 1x1 }\nb\n").graph
    assert [n.out_shape[0] for n in g.nodes] == [4, 6]


def test_network_parameters_are_seen_everywhere():
    text = "network t(w=2)\ninput 3x8x8\nblock b(c) { conv c*w 1x1 }\nb 4\nconv w 1x1\n"
    g = cnndsl.parse(text).graph
    assert [n.out_shape[0] for n in g.nodes] == [8, 2]


ERRORS = [
    err("unknown-function", "input 3x8x8\nconv mx(3, 4) 1x1\n", "unknown function 'mx'", 2, 6,
        "did you mean 'max'?"),
    err("function-arity", "input 3x8x8\nconv ceil(3, 4) 1x1\n", "ceil() takes 1 argument, got 2", 2, 6),
    err("function-word", "input 3x8x8\nconv max(relu, 4) 1x1\n", "unknown name 'relu' in arithmetic", 2, 10),
    err("condition-not-bool", "input 3x8x8\nif 3 { relu }\n", "a condition must be true or false, not 3", 2, 4,
        "compare it"),
    err("condition-unknown-name", "input 3x8x8\nblock b(use_se) { if use_s { relu } }\nb true\n",
        "a condition must be true or false, not use_s", 2, 22, "did you mean 'use_se'?"),
    err("order-on-words", "input 3x8x8\nif relu < 3 { relu }\n", "'<' compares numbers, not relu", 2, 4),
    err("in-size-on-header", "input in_channels\n", "'in_channels' is not known here", 1, 7),
    err("in-height-flat", "input 10\ndense in_height\n", "'in_height': the input here is a flat vector", 2, 7,
        "use in_channels"),
    err("too-large", "input 10\ndense ceil(1e300*1e300)\n", "too large", 2, 12),
]


@pytest.mark.parametrize("text, message, line, col, hint", ERRORS)
def test_error(text, message, line, col, hint):
    assert_error(text, message, line, col, hint)


SETTINGS = [
    (["width=1.2"], {"width": 1.2}),
    (["act=hardswish", "n=3"], {"act": "hardswish", "n": 3}),
    (["k=3x3"], {"k": (3, 3)}),
    (["deep=true"], {"deep": True}),
    (["n=2*3"], {"n": 6}),
]


@pytest.mark.parametrize("items, expected", SETTINGS, ids=[" ".join(s[0]) for s in SETTINGS])
def test_settings(items, expected):
    assert parse_settings(items) == expected


@pytest.mark.parametrize("item", ["width", "=3", "w=", "w=(", "w=max(", "2w=1"])
def test_bad_settings_are_user_errors(item):
    with pytest.raises(CnnDslError) as info:
        parse_settings([item])
    assert "--set" in info.value.message
