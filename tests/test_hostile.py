"""Hostile and odd inputs (issue 14): each case failed before its fix. Specs, weights files,
models, arrays and outputs that a user or an attacker can hand cnndsl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import cnndsl
from cnndsl.errors import CnnDslError

ROOT = Path(__file__).resolve().parent.parent
LENET_BODY = "network tiny\ninput 1x8x8\nconv 4 3x3 relu\nflatten\ndense 2\n"


# -- text encodings editors write ------------------------------------------------------------

@pytest.mark.parametrize("name, text", [
    ("utf-8 byte-order mark", "\ufeff" + LENET_BODY),
    ("CR-only line endings (classic Mac)", LENET_BODY.replace("\n", "\r")),
    ("CRLF line endings (Windows)", LENET_BODY.replace("\n", "\r\n")),
    ("BOM and CRLF", "\ufeff" + LENET_BODY.replace("\n", "\r\n")),
    ("CR-only with a continuation", "network tiny\rinput 1x8x8\rconv 4 \\\r  3x3\rflatten\rdense 2\r"),
])
def test_editor_encodings_are_accepted(tmp_path, name, text):
    path = tmp_path / "t.cnn"
    path.write_bytes(text.encode("utf-8"))
    net = cnndsl.load(path)
    assert net.output_shape == (2,)
    assert net.totals.params == cnndsl.parse(LENET_BODY).totals.params


def test_errors_in_a_cr_only_file_point_at_the_right_line(tmp_path):
    path = tmp_path / "t.cnn"
    path.write_bytes(b"input 1x8x8\rconv 4 3x3\rconv 4 9x9\r")
    with pytest.raises(CnnDslError) as info:
        cnndsl.load(path)
    assert info.value.span.line == 3
    assert "conv 4 9x9" in info.value.render()


def test_fmt_accepts_editor_encodings():
    from cnndsl.lang.fmt import format_text

    assert format_text("\ufeff" + LENET_BODY.replace("\n", "\r")) == format_text(LENET_BODY)


# -- numbers beyond float32 ------------------------------------------------------------------

@pytest.mark.parametrize("decl, inp, col, field", [
    ("fixedconv [[1e39]]", "1x4x4", 11, "kernel"),
    ("fixedconv [[1, -4e38], [0, 1]]", "1x4x4", 11, "kernel"),
    ("fixedconv [[1]] bias=1e39", "1x4x4", 17, "bias"),
    ("batchnorm eps=1e39", "3x4x4", 11, "eps"),
    ("leakyrelu 1e300", "3x4x4", 11, "slope"),
    ("elu alpha=-1e40", "3x4x4", 5, "alpha"),
    ("lrn 3 k=1e39", "3x4x4", 7, "k"),
])
def test_values_beyond_float32_are_refused_at_their_argument(decl, inp, col, field):
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse(f"input {inp}\n{decl}\n", path="t.cnn")
    err = info.value
    assert "float32" in err.message and field in err.message, err.message
    assert (err.span.line, err.span.col) == (2, col), err.render()


def test_values_within_float32_still_compile():
    net = cnndsl.parse("input 1x4x4\nfixedconv [[3e38, -3e38], [1e-30, 0]]\n")
    assert net.output_shape == (1, 3, 3)


# -- block defaults ---------------------------------------------------------------------------

@pytest.mark.parametrize("params, offender", [
    ("x=y, y=2", "y"),
    ("x=x+1", "x"),
    ("c, x=(c, y), y=3", "y"),
])
def test_a_default_that_uses_a_later_parameter_is_refused_at_the_default(params, offender):
    text = f"input 3x8x8\nblock a({params}) {{\n  conv c 3x3\n}}\na 4\n".replace("conv c", "conv 4")
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse(text, path="t.cnn")
    err = info.value
    assert f"uses '{offender}'" in err.message, err.render()
    line = text.splitlines()[1]
    default = line.index("=")
    assert err.span.line == 2 and err.span.col - 1 > default and line[err.span.col - 1] == offender, err.render()
    assert "earlier" in err.hint


# -- diagrams of very wide networks -----------------------------------------------------------

@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_a_concat_of_thousands_of_branches_gives_dot_that_graphviz_reads():
    """dot's parser runs out of stack on an edge chain of ~2,500 nodes (a -> b -> c ...)."""
    from cnndsl.views.graph import to_dot

    branches = "; ".join(f"b{i}: conv 1 1x1" for i in range(2600))
    text = to_dot(cnndsl.parse(f"input 3x4x4\nconcat {{ {branches} }}\n").graph)
    done = subprocess.run(["dot", "-Tcanon"], input=text.encode(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    assert b"b2599" in done.stdout


# -- untrusted text reaching a terminal -------------------------------------------------------

@pytest.mark.parametrize("title", ["\x1b[2J cleared", "a\x0bfake: ok", "\x1b]8;;http://x\x07link", "\u202eevil",
                                   "bell\x07", "del\x7f", "c1\x9b31m"])
def test_a_title_with_control_characters_is_refused_at_the_string(title):
    text = f'network t "{title}"\ninput 1x4x4\nrelu\n'
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse(text, path="t.cnn")
    err = info.value
    assert "control character" in err.message and (err.span.line, err.span.col) == (1, 11), err.render()


def test_a_carriage_return_inside_a_title_is_a_line_break_there():
    with pytest.raises(CnnDslError) as info:
        cnndsl.parse('network t "a\rfake: ok"\ninput 1x4x4\nrelu\n', path="t.cnn")
    assert info.value.span.line == 1


def test_a_title_with_ordinary_unicode_is_kept():
    assert cnndsl.parse('network t "Réseau — 網絡 \t ok"\ninput 1x4x4\nrelu\n').graph.title == "Réseau — 網絡 \t ok"


# -- staging left by killed processes -------------------------------------------------------------

def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_next_publication_sweeps_staging_of_dead_processes_only(tmp_path):
    from cnndsl.io import write_bytes

    dead, live = _dead_pid(), subprocess.Popen(["sleep", "30"])
    try:
        names = {
            f".model.onnx.cnndsl-{dead}-0123abcd": "dead-file",
            f".maps.cnndsl-{dead}-89abcdef": "dead-folder",
            f".model.onnx.cnndsl-{live.pid}-0123abcd": "live",
            ".model.onnx.cnndsl-notapid-0123abcd": "not ours",
            "model.onnx.cnndsl-1-0123abcd": "no dot: not a staging name",
            "photo.png": "the user's",
        }
        for name, what in names.items():
            if what == "dead-folder":
                (tmp_path / name).mkdir()
                (tmp_path / name / "0.png").write_bytes(b"x")
            else:
                (tmp_path / name).write_text(what)
        write_bytes(str(tmp_path / "chart.png"), b"new")
        left = {p.name for p in tmp_path.iterdir()}
    finally:
        live.kill()
        live.wait()
    assert left == {n for n, what in names.items() if not what.startswith("dead")} | {"chart.png"}


def test_a_killed_compile_leaves_nothing_after_the_next_one(tmp_path):
    """SIGKILL cannot be handled: its staging is swept by the next write into the same folder."""
    import signal
    import sys
    import time

    out = tmp_path / "vgg.onnx"
    proc = subprocess.Popen([sys.executable, "-m", "cnndsl", "compile", "specs/vgg11.cnn", "-o", str(out)],
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".vgg.onnx.cnndsl-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "compile ended before it staged"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(p.name.startswith(".vgg.onnx.cnndsl-") for p in tmp_path.iterdir())
    again = [sys.executable, "-m", "cnndsl", "compile", "specs/lenet5.cnn", "-o", str(tmp_path / "l.onnx")]
    done = subprocess.run(again, cwd=str(ROOT), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.onnx"]
