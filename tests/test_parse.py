"""The parser (cnndsl/lang/parse.py): syntax errors at their position, with a hint, rendered with
the source line and a caret; what the checker refuses is in test_check.py."""

from __future__ import annotations

import pytest
from helpers import assert_error, err

import cnndsl
from cnndsl.errors import CheckError, CnnDslError, SpecSyntaxError

SYNTAX_ERRORS = [
    # "conv 8 3x3 stride=" is 18 characters: the line break is column 19
    err("missing-value", "input 1x8x8\nconv 8 3x3 stride=\n",
        "unexpected end of line; expected one of", 2, 19, "incomplete"),
    # reported where the file ends: after "  conv 8 3x3" (12 characters) on line 3
    err("unclosed-brace", "input 1x8x8\nfeatures: {\n  conv 8 3x3\n",
        "unexpected end of file; expected", 3, 13, "a '{' was never closed"),
    err("stray-character", "input 1x8x8\nconv 8 3x3 $\n", "unexpected character '$'", 2, 12, "expected"),
    err("stray-character-late", "input 1x8x8\nconv 8 3x3 stride=2 ?\n", "unexpected character '?'", 2, 21),
    err("condition-in-argument", "input 1x8x8\nconv 8 3 stride=2 if 1 == 1 else 1\n", "unexpected 'if'", 2, 19,
        "goes in parentheses: `stride=(2 if i == 0 else 1)`"),
    err("comparison-in-argument", "input 1x8x8\nblock b(i) { conv 8 3 relu=i == 0 }\nb 1\n", "unexpected '=='", 2, 30,
        "goes in parentheses"),
    err("brace-on-next-line", "input 1x8x8\nconcat\n{ relu }\n",
        "unexpected end of line; expected one of 'crop', 'split', '{'", 2, 7, "a '{' must be on the same line"),
    # a line break inside brackets does not end the statement, so `relu` continues the tuple
    err("shortcut-on-its-own-line", "input 3x8x8\nresidual { conv 4 3x3 pad=1 }\nshortcut { conv 4 1x1 }\n",
        "unexpected '{'", 3, 10, "write `} shortcut {` on the line that closes the residual's body"),
    err("unclosed-paren", "input 1x8x8\nconv 8 3x3 pad=(1, 1\nrelu\n", "unexpected 'relu'; expected", 3, 1),
]


@pytest.mark.parametrize("text, message, line, col, hint", SYNTAX_ERRORS)
def test_syntax_error(text, message, line, col, hint):
    assert_error(text, message, line, col, hint)


def test_syntax_and_check_errors_have_their_own_classes():
    with pytest.raises(SpecSyntaxError):
        cnndsl.parse("input 1x8x8\nconv 8 3x3 $\n")
    with pytest.raises(CheckError):
        cnndsl.parse("input 1x8x8\nmaxpol 2x2\n")


def test_render_of_a_syntax_error():
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse("input 1x8x8\nconv 8 3x3 $\n", path="net.cnn")
    lines = info.value.render().splitlines()
    assert lines[0] == "net.cnn:2:12: error: unexpected character '$'"
    assert lines[2].index("^") == lines[1].index("$")
    assert lines[-1].startswith("hint: expected")


def test_network_line_without_title():
    assert cnndsl.parse("network tiny\ninput 3x8x8\nrelu\n").name == "tiny"
