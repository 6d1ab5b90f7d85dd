"""cnndsl fmt: the canonical layout, idempotence, the same network after formatting, comments kept,
and the command's files and exit codes."""

from __future__ import annotations

import os
import random

import click
import pytest
from helpers import SPECS

from cnndsl import api
from cnndsl.errors import CnnDslError, SpecSyntaxError
from cnndsl.lang.fmt import format_text, tokens

ALL_SPECS = sorted(SPECS.glob("*.cnn"))

# messy input -> canonical text
CASES = [
    ("indentation", "features: {\n      conv 6 5x5\n\tmaxpool 2x2\n    }\n",
     "features: {\n  conv 6 5x5\n  maxpool 2x2\n}\n"),
    ("nested", "a: {\nb: {\nconv 1 1\n}\n}\n", "a: {\n  b: {\n    conv 1 1\n  }\n}\n"),
    ("kwargs", "conv 64 3x3 stride = 2 pad= same\n", "conv 64 3x3 stride=2 pad=same\n"),
    ("lists and tuples", "fixedconv [[0,1] , [1,0]] pad=( 1,2 ,1,2 )\n",
     "fixedconv [[0, 1], [1, 0]] pad=(1, 2, 1, 2)\n"),
    ("arithmetic", "block b(w) {\n  conv w * 4 1 groups=( w + 1 ) // 2\n}\n",
     "block b(w) {\n  conv w*4 1 groups=(w+1)//2\n}\n"),
    ("minus", "conv 8 - 3 3\nconv 8 -3\nconv n - -3 3\nconv 1 pad=( -1 , 2)\n",
     "conv 8-3 3\nconv 8 -3\nconv n--3 3\nconv 1 pad=(-1, 2)\n"),
    ("block header", "block  f ( a , b = 2 ){\n conv a b\n}\n", "block f(a, b=2) {\n  conv a b\n}\n"),
    ("labels", "a :conv 3 3\nb:{ relu }\n", "a: conv 3 3\nb: { relu }\n"),
    ("network parameters and variants", "network  n ( w=1.0 ,d = 2 ) \"t\"\nvariant  big w=2\n",
     "network n(w=1.0, d=2) \"t\"\nvariant big w=2\n"),
    ("conditions", "if a==1 and not b>2{relu}else if a<0 {tanh}\nresidual if s==1{relu}\n",
     "if a == 1 and not b > 2 { relu } else if a < 0 { tanh }\nresidual if s == 1 { relu }\n"),
    ("calls and choices", "conv max( 3,a ) 3 stride=( 2 if i==0 else 1 )\n",
     "conv max(3, a) 3 stride=(2 if i == 0 else 1)\n"),
    ("computed labels, gate, split", "repeat 2 as i{\"l{i+1}\" :gate{relu}}\nconcat split{relu;relu}\nblock:relu\n",
     "repeat 2 as i { \"l{i+1}\": gate { relu } }\nconcat split { relu; relu }\nblock: relu\n"),
    ("semicolons", "conv 3 3;relu ;\n{ ; conv 1 1;; relu; }\n;\n", "conv 3 3; relu\n{ conv 1 1; relu }\n"),
    ("braces", "repeat 2{conv 3 3}\nresidual {conv 3 3}shortcut down{conv 3 1}\n",
     "repeat 2 { conv 3 3 }\nresidual { conv 3 3 } shortcut down { conv 3 1 }\n"),
    ("blank lines", "\n\nnetwork n\n\n\n\ninput 1x8x8\nf: {\n\n  relu\n\n  relu\n\n}\n\n\n",
     "network n\n\ninput 1x8x8\nf: {\n  relu\n\n  relu\n}\n"),
    ("trailing blanks and CRLF", "conv 3 3   \r\nrelu\t\r\n", "conv 3 3\nrelu\n"),
    ("no final newline", "relu", "relu\n"),
    ("empty", "\n\n", ""),
    ("trailing comment", "conv 3 3#c1\nrelu # c2\nrelu      # c3   \n", "conv 3 3  #c1\nrelu  # c2\nrelu      # c3\n"),
    ("full-line comments", "f: {\n# first\n    relu\n        # last\n}\n# end\n",
     "f: {\n  # first\n  relu\n  # last\n}\n# end\n"),
    ("alignment kept", "aa:  relu\nb:   relu;   relu\nc:   conv 64  3x3\n",
     "aa:  relu\nb:   relu;   relu\nc:   conv 64  3x3\n"),
    ("no alignment at braces or keywords", "repeat  2  {  conv 3 3  }  \nblock  f(a)   {\n}\n",
     "repeat 2 { conv 3 3 }\nblock f(a) {\n}\n"),
    ("matrix continued", "fixedconv [[0,1],\n  [1,0]]\n", "fixedconv [[0, 1],\n           [1, 0]]\n"),
    ("hanging bracket", "fixedconv [\n[0,1],\n  [1,0]\n      ]\n", "fixedconv [\n    [0, 1],\n    [1, 0]\n]\n"),
    ("backslash", "f: {\n  conv 64 3x3 \\\n stride=2\n}\n", "f: {\n  conv 64 3x3 \\\n      stride=2\n}\n"),
    ("header", 'network n "A title" year = 1998 top5 =7.3\ninput  1x8x8\n',
     'network n "A title" year=1998 top5=7.3\ninput 1x8x8\n'),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_messy_input_becomes_canonical(text, expected):
    assert format_text(text) == expected
    assert format_text(expected) == expected


def _graph(text: str):
    """The checked network, as plain data: names, kinds, wiring, shapes, parameters, MACs."""
    g = api.parse(text).graph
    nodes = [(n.name, n.kind, repr(n.layer), n.inputs, n.in_shapes, n.out_shape, n.macs,
              [(p.name, p.shape, p.role, p.init) for p in n.params]) for n in g.nodes]
    return g.name, g.title, g.input_shape, g.year, g.top5, nodes


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.stem)
def test_shipped_specs_are_canonical(path):
    text = path.read_text(encoding="utf-8")
    assert format_text(text, str(path)) == text


def _messed(text: str, rng: random.Random) -> str:
    """The same spec with its blanks, indentation and blank lines shuffled (meaning kept)."""
    out, prev, prev_text = [], None, None
    for tok in tokens(text):
        if tok.kind == "_NL":
            out.append(rng.choice(["", " ", "\t"]) + "\n" * rng.choice([1, 1, 2, 3]))
        elif tok.gap == -1 or prev == "BACKSLASH":
            out.append(rng.choice(["", " ", "   ", "\t", "\t  "]))
        elif tok.gap > 0:
            out.append(rng.choice([" ", "  ", "\t", " \f "]))
        elif "-" not in (tok.text, prev_text) and tok.kind != "NEG" and prev not in ("NEG", "CALLNAME") \
                and rng.random() < 0.5:
            out.append(" ")  # a space where none is needed, away from any minus sign
        out.append("\\\n" if tok.kind == "BACKSLASH" else tok.text)
        prev, prev_text = tok.kind, tok.text
    return "".join(out)


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.stem)
def test_formatting_keeps_the_network(path):
    text = path.read_text(encoding="utf-8")
    want = _graph(text)
    rng = random.Random(path.stem)
    for _ in range(2):
        messy = _messed(text, rng)
        assert _graph(messy) == want  # the variant itself means the same
        once = format_text(messy, str(path))
        assert format_text(once, str(path)) == once  # idempotent
        assert _graph(once) == want


COMMENTED = """\
# header comment
network c   # the name
input 1x8x8

block unit(c)   {   # a block
  # inside the block
  conv c 3x3 pad=1 # after a conv
}

# before the group
f: {
  unit 4;   unit 4    # two units
    # a comment at the end of the group
}
fixedconv [[1], # row one
[2]]   # row two
"""


def test_comments_stay_with_their_statements():
    out = format_text(COMMENTED)
    assert format_text(out) == out
    lines = out.splitlines()
    for code, comment in [("network c", "# the name"), ("block unit(c) {", "# a block"),
                          ("conv c 3x3 pad=1", "# after a conv"), ("unit 4; unit 4", "# two units"),
                          ("fixedconv [[1],", "# row one"), ("[2]]", "# row two")]:
        line = next(x for x in lines if comment in x)
        assert line.strip().startswith(code), (code, line)
    assert lines[0] == "# header comment"
    assert "  # inside the block" in lines and "# before the group" in lines
    assert "  # a comment at the end of the group" in lines
    assert [x for x in lines if "#" in x] and all(x == x.rstrip() for x in lines)


def test_comment_column_kept_when_the_code_shrinks():
    out = format_text("conv 64 3x3 stride = 2     # aligned\nconv 64 3x3 stride=2       # aligned\n")
    assert out == "conv 64 3x3 stride=2       # aligned\nconv 64 3x3 stride=2       # aligned\n"


def test_a_spec_that_does_not_parse_is_refused_with_its_position():
    with pytest.raises(SpecSyntaxError) as info:
        format_text("features: {\n  conv 6 5x5\n", "bad.cnn")
    assert info.value.render().startswith("bad.cnn:")
    with pytest.raises(SpecSyntaxError) as info:
        format_text("conv 3 3 )\n", "bad.cnn")
    assert info.value.render().startswith("bad.cnn:1:10: error:")


def test_a_spec_with_check_errors_is_still_formatted():
    assert format_text("maxpol  3x3 stride = 2\n") == "maxpol 3x3 stride=2\n"  # fmt is syntax only
    with pytest.raises(CnnDslError):
        api.parse("maxpol 3x3")


# continuation lines: a `;` or `-` that starts one keeps its meaning
CONTINUED = [
    ("semicolon then a label", "relu \\\n; x: relu\n", "relu \\\n    ; x: relu\n"),
    ("semicolon then a statement", "input 1x8x8\nrelu \\\n; relu\n", "input 1x8x8\nrelu \\\n    ; relu\n"),
    ("semicolon alone", "relu \\\n;\nrelu\n", "relu\nrelu\n"),
    ("semicolon in a block", "{ \\\n ; relu }\n", "{ \\\n    relu }\n"),
    ("semicolon twice", "relu; \\\n; relu\n", "relu; \\\n    relu\n"),
    ("continuing nothing", "relu \\\n\nrelu\n", "relu\nrelu\n"),
    ("continuing a semicolon", "relu; \\\n\nrelu\n", "relu\nrelu\n"),
    ("continuing a comment", "relu \\\n# c\nrelu\n", "relu \\\n    # c\nrelu\n"),
    ("minus after a continuation", "input 1x8x8\nconv 8 \\\n-5 3\n", "input 1x8x8\nconv 8 \\\n    - 5 3\n"),
    ("minus before a float", "conv 8 \\\n-.5 3\n", "conv 8 \\\n    - .5 3\n"),
    ("minus in brackets", "conv (8\n-5) 3\n", "conv (8\n      - 5) 3\n"),
    ("minus before a name", "conv 8 \\\n-n 3\n", "conv 8 \\\n    -n 3\n"),
    ("negative number continued", "conv 8 \\\n  -5 3\n", "conv 8 \\\n    -5 3\n"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CONTINUED], ids=[c[0] for c in CONTINUED])
def test_continuation_lines_keep_their_meaning(text, expected):
    from cnndsl.lang.fmt import _skeleton
    from cnndsl.lang.parse import parse

    out = format_text(text)
    assert out == expected
    assert format_text(out) == out
    assert _skeleton(parse(out)) == _skeleton(parse(text))


def test_an_internal_failure_is_refused_cleanly(monkeypatch):
    from cnndsl.lang import fmt

    def broken(self, toks):
        raise IndexError("a bug in the printer")

    monkeypatch.setattr(fmt._Printer, "feed", broken)
    with pytest.raises(CnnDslError, match="would change what this spec means"):
        format_text("relu\n")


def test_a_later_pass_that_fails_is_refused_cleanly(monkeypatch):
    from cnndsl.lang import fmt

    real, calls = fmt.tokens, []

    def tokens_once(text):
        calls.append(text)
        if len(calls) > 1:
            from lark.exceptions import UnexpectedToken

            raise UnexpectedToken(None, {"NAME"})
        return real(text)

    monkeypatch.setattr(fmt, "tokens", tokens_once)
    with pytest.raises(CnnDslError, match="would change what this spec means"):
        format_text("relu\n")


def test_a_layout_that_never_settles_is_refused(monkeypatch):
    from cnndsl.lang import fmt

    layouts = iter(["conv 8 3\n", "conv 8  3\n"] * fmt.MAX_PASSES * 2)
    monkeypatch.setattr(fmt._Printer, "feed", lambda self, toks: next(layouts))
    with pytest.raises(CnnDslError, match="would change what this spec means"):
        format_text("conv 8 3\n")


def test_fmt_refuses_to_change_the_meaning(monkeypatch):
    from cnndsl.lang import fmt

    monkeypatch.setattr(fmt._Printer, "feed", lambda self, toks: "conv 8-3\n")  # as if a bug joined args
    with pytest.raises(CnnDslError, match="would change what this spec means"):
        format_text("conv 8 -3\n")


# -- the command --------------------------------------------------------------------------

MESSY, CANONICAL = "features:{\n conv 6 5x5   # c1\n}\n", "features: {\n  conv 6 5x5  # c1\n}\n"


@pytest.fixture
def specs(tmp_path):
    messy, tidy = tmp_path / "messy.cnn", tmp_path / "tidy.cnn"
    messy.write_text(MESSY, encoding="utf-8")
    tidy.write_text(CANONICAL, encoding="utf-8")
    os.chmod(messy, 0o640)
    return messy, tidy


def test_fmt_rewrites_in_place(specs, cli):
    messy, tidy = specs
    r = cli("fmt", messy, tidy)
    assert r.exit_code == 0, r.output
    assert messy.read_text(encoding="utf-8") == CANONICAL and tidy.read_text(encoding="utf-8") == CANONICAL
    assert f"reformatted {messy}" in r.output and str(tidy) not in r.output
    assert oct(messy.stat().st_mode & 0o777) == oct(0o640)  # the file's mode is kept
    assert sorted(p.name for p in messy.parent.iterdir()) == ["messy.cnn", "tidy.cnn"]  # no temp file left


def test_fmt_check_lists_what_would_change_and_writes_nothing(specs, cli):
    messy, tidy = specs
    r = cli("fmt", "--check", messy, tidy)
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert str(messy) in lines and str(tidy) not in lines  # one path a line, for scripts
    assert "1 of 2 specs would be reformatted" in r.output
    assert messy.read_text(encoding="utf-8") == MESSY
    r = cli("fmt", "--check", tidy)
    assert r.exit_code == 0 and r.output == ""


def test_fmt_stdout_and_stdin(specs, cli):
    messy, _ = specs
    r = cli("fmt", "--stdout", messy)
    assert r.exit_code == 0 and r.output == CANONICAL
    assert messy.read_text(encoding="utf-8") == MESSY
    r = cli("fmt", "-", input=MESSY)
    assert r.exit_code == 0 and r.output == CANONICAL
    r = cli("fmt", "--check", "-", input=MESSY)
    assert r.exit_code == 1 and "<stdin>" in r.output


def test_fmt_refuses_a_bad_spec_and_leaves_it_untouched(tmp_path, specs, cli):
    messy, _ = specs
    bad = tmp_path / "bad.cnn"
    bad.write_text("features: {\n  conv 6 5x5\n", encoding="utf-8")
    r = cli("fmt", bad, messy)
    assert r.exit_code == 1
    assert f"{bad}:" in r.output and "error: unexpected end of file" in r.output
    assert "Traceback" not in r.output
    assert bad.read_text(encoding="utf-8") == "features: {\n  conv 6 5x5\n"
    assert messy.read_text(encoding="utf-8") == CANONICAL  # the good one is still formatted
    r = cli("fmt", tmp_path / "missing.cnn")
    assert r.exit_code == 1 and "cannot read the spec" in r.output


def test_fmt_goes_on_after_a_spec_it_cannot_format(tmp_path, specs, monkeypatch, cli):
    from cnndsl.lang import fmt

    messy, _ = specs
    real = fmt._Printer.feed

    def feed(self, toks):
        if any(tok.text == "boom" for tok in toks):
            raise IndexError("a bug in the printer")
        return real(self, toks)

    monkeypatch.setattr(fmt._Printer, "feed", feed)
    boom = tmp_path / "boom.cnn"
    boom.write_text("boom\n", encoding="utf-8")
    r = cli("fmt", "--check", boom, messy)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{boom}: error: cnndsl fmt would change what this spec means" in r.output
    assert str(messy) in r.output.splitlines()  # the next spec is still checked


def test_fmt_formats_a_semicolon_after_a_continuation(tmp_path, cli):
    spec = tmp_path / "s.cnn"
    spec.write_text("input 1x8x8\nrelu \\\n; x: relu\n", encoding="utf-8")
    r = cli("fmt", "--check", spec)
    assert r.exit_code == 1 and r.output.splitlines()[0] == str(spec)
    r = cli("fmt", spec)
    assert r.exit_code == 0, r.output
    assert spec.read_text(encoding="utf-8") == "input 1x8x8\nrelu \\\n    ; x: relu\n"


def test_fmt_refuses_a_read_only_spec(specs, cli):
    messy, tidy = specs
    os.chmod(messy, 0o444)
    os.chmod(tidy, 0o444)
    r = cli("fmt", messy, tidy)  # also as root, who may write anyway
    assert r.exit_code == 1
    assert f"{messy}: error: cannot write the spec: permission denied" in r.output
    assert "Traceback" not in r.output and str(tidy) not in r.output  # a canonical one needs no write
    assert messy.read_text(encoding="utf-8") == MESSY
    assert oct(messy.stat().st_mode & 0o777) == oct(0o444)


def test_fmt_check_and_stdout_together_is_a_usage_error(specs, cli):
    messy, _ = specs
    r = cli("fmt", "--check", "--stdout", messy)
    assert r.exit_code == 2 and "--check and --stdout" in r.output
    assert messy.read_text(encoding="utf-8") == MESSY


def test_fmt_errors_are_coloured_on_a_terminal(tmp_path, monkeypatch, cli):
    import sys

    # fmt renders its errors as every command does, in cnndsl.cli.group
    monkeypatch.setattr(sys.modules["cnndsl.cli.group"], "color_enabled", lambda stream=None: True)
    bad = tmp_path / "bad.cnn"
    bad.write_text("conv 3 3 )\n", encoding="utf-8")
    r = cli("fmt", bad)
    assert r.exit_code == 1
    assert click.style("error:", fg="red", bold=True) in r.output, repr(r.output)


def test_fmt_keeps_hard_links(specs, cli):
    messy, _ = specs
    other = messy.parent / "other.cnn"
    os.link(messy, other)
    r = cli("fmt", messy)
    assert r.exit_code == 0, r.output
    assert other.read_text(encoding="utf-8") == CANONICAL  # one file, two names: both changed
    assert os.path.samefile(messy, other) and messy.stat().st_nlink == 2
    assert oct(messy.stat().st_mode & 0o777) == oct(0o640)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_fmt_keeps_the_owner(specs, cli):
    messy, _ = specs
    os.chown(messy, 1234, 2345)
    r = cli("fmt", messy)
    assert r.exit_code == 0, r.output
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert (messy.stat().st_uid, messy.stat().st_gid) == (1234, 2345)


def test_align_false_collapses_code_alignment_but_keeps_comment_columns():
    text = "aa:  relu;   relu     # c\nb:   conv 64  3x3     # d\n"
    assert format_text(text, align=False) == "aa: relu; relu        # c\nb: conv 64 3x3        # d\n"


def test_fmt_no_align_collapses_alignment(tmp_path, cli):
    spec = tmp_path / "aligned.cnn"
    spec.write_text("a:    relu\nbb:   relu\n", encoding="utf-8")
    assert cli("fmt", "--check", spec).exit_code == 0  # alignment is canonical by default
    r = cli("fmt", "--no-align", spec)
    assert r.exit_code == 0 and spec.read_text(encoding="utf-8") == "a: relu\nbb: relu\n"


@pytest.mark.parametrize("text, expected", [
    # a column shared with the next line is a table: kept (left- or right-aligned)
    ("a: conv 64  3x3\nb: conv 128 3x3\n", "a: conv 64  3x3\nb: conv 128 3x3\n"),
    ("x: inception 64  96\ny: inception 128 128\n", "x: inception 64  96\ny: inception 128 128\n"),
    ("a: dense   10\nb: dense 10\n", "a: dense 10\nb: dense 10\n"),  # a column nothing else shares
    ("network   tiny   \"t\"\ninput 3x8x8\n", "network tiny \"t\"\ninput 3x8x8\n"),
    ("conv 8 3x3     pad=1\nrelu\n", "conv 8 3x3 pad=1\nrelu\n"),
    # alignment that only lined up with blanks a first pass removes settles in later passes
    ("conv 8  3x3\nconv 8  3x3\n", "conv 8  3x3\nconv 8  3x3\n"),
])
def test_extra_spaces_survive_only_as_table_columns(text, expected):
    out = format_text(text)
    assert out == expected and format_text(out) == out
