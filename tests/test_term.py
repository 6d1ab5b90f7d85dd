"""Colour only on a terminal and never with NO_COLOR; progress only on a terminal, erased after."""

from __future__ import annotations

import io
import re
import sys

import pytest
from helpers import SPECS

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.views import term

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("env, tty, expected", [
    ({}, True, True),
    ({}, False, False),
    ({"NO_COLOR": "1"}, True, False),
    ({"NO_COLOR": ""}, True, True),  # no-color.org: set to a non-empty value
    ({"TERM": "dumb"}, True, False),
])
def test_colour_only_on_a_terminal_without_no_color(monkeypatch, env, tty, expected):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert term.color_enabled(Tty() if tty else io.StringIO()) is expected


@pytest.mark.parametrize("line, coloured", [
    ("error: bad", "error:"),
    ("net.cnn:3:5: error: bad", "error:"),
    ("note: the weights", "note:"),
    ("hint: use pad=1", "hint:"),
    ("warning: NaN", "warning:"),
    ("plain output", None),
])
def test_prefixes_are_coloured_and_text_is_unchanged(line, coloured):
    out = term.styled(line, True)
    assert ANSI.sub("", out) == line
    assert (out != line) == (coloured is not None)
    assert term.styled(line, False) == line


def bad_spec_error() -> CnnDslError:
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse("input 3x4x4\nconv 8 5x5\n", path="bad.cnn")
    return info.value


def test_rendered_errors_in_colour_read_the_same_without_it():
    exc = bad_spec_error()
    plain, coloured = exc.render(), exc.render(term.Style(True))
    assert ANSI.search(coloured) and not ANSI.search(plain)
    assert ANSI.sub("", coloured) == plain


def test_cli_errors_are_plain_when_not_a_terminal(tmp_path, cli):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 3x4x4\nconv 8 5x5\n")
    r = cli("check", bad)
    assert r.exit_code == 1 and "error:" in r.stderr and not ANSI.search(r.output)


def test_cli_errors_coloured_on_a_terminal(tmp_path, monkeypatch, cli):
    monkeypatch.setattr(sys.modules["cnndsl.cli.group"], "color_enabled", lambda stream=None: True)
    r = cli("compile", tmp_path / "missing.cnn")
    assert r.exit_code == 1 and ANSI.search(r.stderr) and r.stdout == ""


def test_progress_shows_only_on_a_terminal_after_a_delay_and_erases_itself():
    quiet = io.StringIO()
    p = term.Progress(stream=quiet, after=0)
    p.show("writing 50%")
    p.done()
    assert quiet.getvalue() == ""
    tty = Tty()
    p = term.Progress(stream=tty, after=0)
    p.show("writing weights 50%")
    p.show("writing 99%")
    p.done()
    assert tty.getvalue() == "\rwriting weights 50%\rwriting 99%        \r" + " " * 19 + "\r"  # all erased
    slow = Tty()
    p = term.Progress(stream=slow, after=60)
    p.show("too early")
    p.done()
    assert slow.getvalue() == ""


@pytest.mark.parametrize("args", [
    ["params", str(SPECS / "lenet5.cnn")],
    ["summary", str(SPECS / "lenet5.cnn")],
    ["compile", str(SPECS / "lenet5.cnn"), "-o", "{tmp}/m.onnx"],
])
def test_results_go_to_stdout_and_nothing_to_stderr(tmp_path, args, cli):
    r = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 0 and r.stdout and r.stderr == ""
