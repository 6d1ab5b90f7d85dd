"""Architecture diagrams: DOT structure against the graph, depth collapse, escaping, Graphviz, the CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from helpers import SPECS, graph

import cnndsl
from cnndsl.model.ir import TRAINABLE
from cnndsl.views.graph import to_dot

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")
NODE = re.compile(r"^\s*(input|n\d+|b\d+) \[", re.M)
EDGE = re.compile(r"^\s*(\S+) -> (\S+);$", re.M)
CLUSTER = re.compile(r"^\s*subgraph cluster_\d+ \{\n.*tooltip=\"([^\"]*)\"", re.M)
PARAMS = re.compile(r"([\d,]+) params")
MAGIC = {".svg": b"<svg", ".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-", ".dot": b"digraph "}


def run_dot(text: str, fmt: str = "svg") -> subprocess.CompletedProcess:
    return subprocess.run([DOT, f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=60, check=False)


def box_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if NODE.match(line)]


# --- structure at full depth -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet5", "resnet18", "googlenet", "filters"])
def test_every_layer_and_connection_is_drawn_once(name):
    g = graph(name)
    text = to_dot(g)
    assert len(NODE.findall(text)) == len(g.nodes) + 1  # the input is a node of its own
    expected = {("input" if j < 0 else f"n{j}", f"n{i}") for i, node in enumerate(g.nodes) for j in node.inputs}
    assert len(EDGE.findall(text)) == len(expected) and set(EDGE.findall(text)) == expected


@pytest.mark.parametrize("name, clusters", [
    ("lenet5", {"features", "classifier"}),
    ("resnet18", {"layer1", "layer1.0", "layer2.0", "layer2.0.downsample", "layer4.1"}),
    ("googlenet", {"conv1", "inception3a", "inception3a.branch1", "inception3a.branch2.1", "inception5b.branch4"}),
])
def test_blocks_are_clusters_labelled_with_their_parameters(name, clusters):
    g = graph(name)
    text = to_dot(g)
    found = CLUSTER.findall(text)
    assert clusters <= set(found) and len(found) == len(set(found))
    for cluster in found:
        block = text.split(f'tooltip="{cluster}"', 1)[0].rsplit("\n", 1)[-1]
        expected = sum(n.count(TRAINABLE) for n in g.nodes if n.name.startswith(cluster + "."))
        assert f"{expected:,} params" in block


def test_layer_labels_show_kind_options_shape_and_params():
    text = to_dot(graph("resnet18"))
    assert "<B>conv</B> 64 7x7 stride=2 pad=3 bias=false<BR/>64x112x112, 9,408 params" in text
    assert "<B>input</B><BR/>3x224x224" in text and "<B>dense</B> 1000<BR/>1000, 513,000 params" in text
    assert "11,689,512 params" in text.split("\n")[6]  # the graph's title


def test_output_is_deterministic():
    first = to_dot(graph("googlenet"), 2)
    assert first == to_dot(cnndsl.load(SPECS / "googlenet.cnn").graph, 2)


# --- depth ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, depth", [("resnet152", 1), ("resnet152", 2), ("resnet18", 3), ("googlenet", 1),
                                         ("googlenet", 2), ("lenet5", 1)])
def test_collapsed_boxes_account_for_every_layer_and_parameter(name, depth):
    g = graph(name)
    lines = box_lines(to_dot(g, depth))
    params = sum(int(m.replace(",", "")) for line in lines for m in PARAMS.findall(line))
    assert params == sum(n.count(TRAINABLE) for n in g.nodes)
    layers = sum(int(m) for line in lines for m in re.findall(r"(\d+) layers?,", line))
    plain = sum(1 for line in lines if re.match(r"\s*n\d+ ", line))
    assert layers + plain == len(g.nodes)


def test_depth_one_keeps_resnet152_readable():
    text = to_dot(graph("resnet152"), 1)
    assert len(NODE.findall(text)) < 30 and "subgraph" not in text
    for stage, call, layers in [("layer1", "stage(64, 3, stride=1)", 32), ("layer3", "stage(256, 36)", 362)]:
        assert f"<B>{stage}</B><BR/>{call}<BR/>{layers} layers," in text  # the box names the block call
    assert "<B>layer4</B><BR/>stage(512, 3)<BR/>32 layers, 14,964,736 params, 809M MACs<BR/>2048x7x7" in text


def test_depth_two_nests_blocks_in_their_stage():
    text = to_dot(graph("resnet18"), 2)
    assert CLUSTER.findall(text) == ["layer1", "layer2", "layer3", "layer4"]  # declared in written order
    assert "<B>layer2.0</B><BR/>basic(128, 2)<BR/>9 layers, 230,144 params, 180M MACs<BR/>128x28x28" in text
    assert EDGE.findall(text).count(("b0", "b1")) == 1  # layer1.0 -> layer1.1, once


def test_repeated_calls_of_a_block_make_one_box():
    """ResNet-152 at depth 2: layer3's 35 identical bottlenecks are one box, `bottleneck(256) × 35`."""
    text = to_dot(graph("resnet152"), 2)
    assert "<B>layer3.1 .. 35</B><BR/>bottleneck(256) \u00d7 35<BR/>350 layers, 39,101,440 params" in text
    assert len(NODE.findall(text)) < 25
    # every layer and parameter is still in some box (the boxes' counts add up)
    counts = [int(n.replace(",", "")) for n in re.findall(r"<BR/>(\d[\d,]*) layers?,", text)]
    singles = len(re.findall(r"^  n\d+ \[", text, flags=re.M))
    assert sum(counts) + singles == len(graph("resnet152").nodes)


def test_a_numbered_run_of_layers_is_no_cluster_of_its_own():
    """`features: { conv ...; relu; ... }` clusters `features`; the numbers inside are positions, not blocks."""
    text = to_dot(graph("vgg16"), None)
    assert CLUSTER.findall(text) == ["features", "classifier"]


def test_left_to_right():
    text = to_dot(graph("lenet5"), None, "LR")
    assert "rankdir=LR" in text and "rankdir=TB" not in text
    with pytest.raises(ValueError):
        to_dot(graph("lenet5"), None, "BT")


def test_depth_must_be_positive(cli):
    with pytest.raises(ValueError):
        to_dot(graph("lenet5"), 0)
    r = cli("graph", SPECS / "lenet5.cnn", "--depth", "0", "-o", "-")
    assert r.exit_code == 2


# --- escaping ------------------------------------------------------------------------------------

def test_any_name_and_title_is_escaped(tmp_path):
    spec = tmp_path / 'we"ird <net> & \\ n.cnn'  # no `network` line: the name is the file's
    spec.write_text('input 1x8x8\nconv 2 3x3 relu\n')
    titled = tmp_path / "t.cnn"
    titled.write_text('network odd "T <b>&amp; \\\\ é {x} -> ]]" \ninput 1x8x8\na_b: { conv 2 3x3 relu }\n')
    weird, odd = to_dot(cnndsl.load(spec).graph), to_dot(cnndsl.load(titled).graph)
    assert weird.startswith('digraph "network" {') and odd.startswith('digraph "odd" {')
    assert "we&quot;ird &lt;net&gt; &amp; &#92;&#92; n" in weird
    assert "T &lt;b&gt;&amp;amp; &#92;&#92;&#92;&#92; é {x} -&gt; ]]" in odd and "<b>" not in odd
    if DOT:
        for text in (weird, odd):
            done = run_dot(text)
            assert done.returncode == 0 and not done.stderr, done.stderr


@needs_dot
def test_backslashes_are_drawn_as_written(tmp_path):
    """Graphviz expands \\G, \\N, \\L and \\\\ even in HTML-like labels: no user text may trigger it."""
    spec = tmp_path / "w\\G\\N.cnn"  # no `network` line: the name is the file's
    spec.write_text("input 1x8x8\nconv 2 3x3\n")
    titled = tmp_path / "t.cnn"
    title = "a\\Nb \\G \\\\ \\L \\n \\E end\\"
    titled.write_text(f'network bs "{title}"\ninput 1x8x8\nconv 2 3x3\n')
    assert cnndsl.load(titled).graph.title == title
    svg = run_dot(to_dot(cnndsl.load(spec).graph)).stdout.decode()
    assert ">w\\G\\N</text>" in svg
    svg = run_dot(to_dot(cnndsl.load(titled).graph)).stdout.decode()
    assert f">: {title}</text>" in svg


# --- Graphviz ------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("depth", [None, 1])
@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.cnn")))
def test_dot_accepts_every_shipped_spec(spec, depth):
    done = run_dot(to_dot(graph(spec), depth))
    assert done.returncode == 0 and b"<svg" in done.stdout, done.stderr.decode()
    assert not done.stderr, done.stderr.decode()


INCEPTIONS = [f"inception{k}" for k in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
GOOGLENET = [[f"{block}.branch{k}" for k in (1, 2, 3, 4)] for block in INCEPTIONS]
FILTERS = [["identity", "outline", "sobel_left", "sobel_bottom", "darken", "lighten"]]
SINGLE = "input 1x8x8\nconcat { conv 2 1x1; conv 3 1x1; conv 4 1x1; conv 5 1x1 }\n"
MIXED = ("input 1x8x8\n"
         "x: concat { a: { conv 2 1x1; conv 2 3x3 pad=1 }; conv 3 1x1; { conv 4 1x1; relu }; b: conv 2 1x1 }\n")
NESTED = ("input 8x16x16\nstem: conv 8 3x3 pad=1\n"
          "r: residual { x: concat { a: { conv 2 1x1; conv 2 3x3 pad=1 }; conv 2 1x1; { conv 2 1x1; relu }; "
          "b: conv 2 1x1 } }\n"
          "y: concat { p: { conv 4 1x1 }; q: concat { conv 2 1x1; z: { conv 2 1x1; relu } }; conv 4 1x1 }\n"
          "concat { conv 2 1x1; m: { conv 2 1x1; relu }; conv 2 1x1; { relu; conv 2 1x1 } }\n")
NESTED_BRANCHES = [["r.x.a", "r.x.1", "r.x.2", "r.x.b"], ["y.p", "y.q", "y.2"], ["y.q.0", "y.q.z"],
                   ["3", "m", "5", "6"]]


def branch_graph(spec: str):
    return graph(spec) if "\n" not in spec else cnndsl.parse(spec).graph


@needs_dot
@pytest.mark.parametrize("spec, depth, concats", [
    ("googlenet", None, GOOGLENET), ("googlenet", 2, GOOGLENET), ("googlenet", 3, GOOGLENET),
    ("filters", None, FILTERS),
    (SINGLE, None, [["0", "1", "2", "3"]]),
    (MIXED, None, [["x.a", "x.1", "x.2", "x.b"]]), (MIXED, 2, [["x.a", "x.1", "x.2", "x.b"]]),
    (NESTED, None, NESTED_BRANCHES), (NESTED, 2, NESTED_BRANCHES[1:2] + NESTED_BRANCHES[3:]),
    (NESTED, 3, NESTED_BRANCHES),
], ids=["googlenet", "googlenet-2", "googlenet-3", "filters", "single", "mixed", "mixed-2", "nested", "nested-2",
        "nested-3"])
def test_parallel_branches_read_left_to_right(spec, depth, concats):
    """Single layers, clusters and collapsed blocks alike: each branch's boxes lie left of the next's."""
    text = to_dot(branch_graph(spec), depth)
    names = dict(re.findall(r'^\s*([nb]\d+) \[.*tooltip="([^"]*)"', text, re.M))
    plain = run_dot(text, "plain").stdout.decode().splitlines()
    x = {p[1]: float(p[2]) for p in (line.split() for line in plain) if p[0] == "node"}
    for branches in concats:
        spans = []
        for branch in branches:
            xs = [x[key] for key, name in names.items() if name == branch or name.startswith(branch + ".")]
            assert xs, branch
            spans.append((min(xs), max(xs)))
        where = dict(zip(branches, spans, strict=True))
        for (_, right), (left, _), branch in zip(spans, spans[1:], branches[1:], strict=False):
            assert right < left, f"{branch} is not right of the branch before it: {where}"


# --- the command ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".dot", ".svg", ".png", ".pdf"])
def test_command_writes_each_format(tmp_path, ext, cli):
    if ext != ".dot" and DOT is None:
        pytest.skip("Graphviz's dot is not installed")
    out = tmp_path / f"net{ext}"
    r = cli("graph", SPECS / "resnet18.cnn", "--depth", "2", "-o", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(MAGIC[ext]) if ext != ".svg" else MAGIC[ext] in out.read_bytes()[:2000]
    assert f"wrote {out}" in r.stdout and os.listdir(tmp_path) == [out.name]  # no temporary file left


def test_summary_says_collapsed_only_when_a_block_was(tmp_path, cli):
    r = cli("graph", SPECS / "lenet5.cnn", "--depth", "9", "-o", tmp_path / "net.dot")
    assert r.exit_code == 0 and r.stdout == f"wrote {tmp_path / 'net.dot'} (12 layers)\n"
    r = cli("graph", SPECS / "lenet5.cnn", "--depth", "1", "-o", tmp_path / "net.dot")
    assert r.exit_code == 0 and "(12 layers, blocks below depth 1 collapsed; --depth all draws every layer)" in r.stdout


@pytest.mark.parametrize("spec, args, said", [
    ("lenet5", [], "(12 layers)"),  # every layer fits a slide
    ("resnet152", [], "(515 layers, blocks below depth 2 collapsed; --depth all draws every layer)"),
    ("resnet152", ["--depth", "all"], "(515 layers)"),
])
def test_the_default_depth_fits_a_slide(tmp_path, cli, spec, args, said):
    r = cli("graph", SPECS / f"{spec}.cnn", *args, "-o", tmp_path / "net.dot")
    assert r.exit_code == 0 and r.stdout == f"wrote {tmp_path / 'net.dot'} {said}\n"


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_depth_is_a_number_or_all(cli, value):
    r = cli("graph", SPECS / "lenet5.cnn", "--depth", value, "-o", "-")
    assert r.exit_code == 2 and "--depth" in r.stderr


def test_lr_option(cli):
    r = cli("graph", SPECS / "lenet5.cnn", "--lr", "-o", "-")
    assert r.exit_code == 0 and "rankdir=LR" in r.stdout


@needs_dot
def test_pdf_has_no_creation_date(tmp_path, cli):
    """Cairo stamps the time into the PDF; it is blanked in place so the byte offsets stay right."""
    out = tmp_path / "net.pdf"
    assert cli("graph", SPECS / "lenet5.cnn", "-o", out).exit_code == 0
    data = out.read_bytes()
    assert b"/CreationDate" not in data and b"D:20" not in data
    xref = int(data.rsplit(b"startxref", 1)[1].split()[0])
    assert data[xref:].startswith(b"xref")


def test_dash_prints_dot_to_stdout(cli):
    r = cli("graph", SPECS / "lenet5.cnn", "-o", "-")
    assert r.exit_code == 0 and r.stdout == to_dot(graph("lenet5"))


def test_dot_output_needs_no_graphviz(tmp_path, monkeypatch, cli):
    monkeypatch.setattr("cnndsl.views.diagram.shutil.which", lambda name: None)
    r = cli("graph", SPECS / "lenet5.cnn", "-o", tmp_path / "net.gv")
    assert r.exit_code == 0 and (tmp_path / "net.gv").read_text() == to_dot(graph("lenet5"))


def test_missing_graphviz_is_a_clear_error_and_leaves_the_old_file(tmp_path, monkeypatch, cli):
    monkeypatch.setattr("cnndsl.views.diagram.shutil.which", lambda name: None)
    out = tmp_path / "net.svg"
    out.write_text("old")
    r = cli("graph", SPECS / "lenet5.cnn", "-o", out)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "needs Graphviz's `dot` program" in r.stderr and "apt install graphviz" in r.stderr
    assert "brew install graphviz" in r.stderr and "-o NAME.dot" in r.stderr
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["net.svg"]


def test_failing_graphviz_is_reported_and_writes_nothing(tmp_path, monkeypatch, cli):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr("cnndsl.views.diagram.shutil.which", lambda name: str(fake))
    r = cli("graph", SPECS / "lenet5.cnn", "-o", tmp_path / "net.png")
    assert r.exit_code == 1 and "dot failed (exit 1): Error: syntax error in line 1" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["dot"]


@pytest.mark.parametrize("output, message", [
    ("net.JPG", "net.JPG: error: unknown diagram format '.jpg'"),
    ("net", "net: error: the output name has no extension to tell the format"),
    ("missing/net.dot", "net.dot: error: cannot write the diagram: No such file or directory"),
])
def test_output_errors(tmp_path, output, message, cli):
    r = cli("graph", SPECS / "lenet5.cnn", "-o", tmp_path / output)
    assert r.exit_code == 1 and message in r.stderr and "Traceback" not in r.output
    assert "hint: name the output with one of .dot" in r.stderr or "missing" in output
    assert os.listdir(tmp_path) == []


def test_bad_spec_points_at_the_line_and_writes_nothing(tmp_path, cli):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 1x8x8\nconv 4 3x3\nmaxpol 2x2\n")
    r = cli("graph", bad, "-o", tmp_path / "bad.svg")
    assert r.exit_code == 1 and f"{bad}:3:1: error: unknown layer 'maxpol'" in r.stderr
    assert os.listdir(tmp_path) == ["bad.cnn"]


# --- encoder-decoders and several outputs -------------------------------------------------------

SKIP = re.compile(r'^\s*(\S+) -> (\S+) \[color="#2b6cb0", penwidth=1.2, constraint=false\];$', re.M)
SAME = re.compile(r"^\s*\{rank=same; (\S+); (\S+)\}$", re.M)


def _box_names(text: str) -> dict[str, str]:
    """DOT node id -> the name it shows (the tooltip)."""
    return dict(re.findall(r'^\s*(\w+) \[label=<.*?tooltip="([^"]*)"', text, re.M))


def test_unet_is_drawn_as_a_u_with_its_skips_across():
    """At depth 1 each decoder level sits beside its encoder level (rank=same), the skip crossing
    between them; the decoder's own edges then point up and do not rank the boxes."""
    text = to_dot(graph("unet"), depth=1)
    names = _box_names(text)
    skips = [(names[a], names[b]) for a, b in SKIP.findall(text)]
    assert skips == [("down4", "up4"), ("down3", "up3"), ("down2", "up2"), ("down1", "up1")]
    assert sorted((names[a], names[b]) for a, b in SAME.findall(text)) == sorted(skips)
    loose = [(names[a], names[b]) for a, b in re.findall(r"^\s*(\S+) -> (\S+) \[constraint=false\];$", text, re.M)]
    assert loose == [("bottom", "up4"), ("up4", "up3"), ("up3", "up2"), ("up2", "up1")]


@needs_dot
def test_unet_u_shape_in_the_drawing():
    """Graphviz's layout puts each upK at the height of downK, to its right."""
    out = run_dot(to_dot(graph("unet"), depth=1), "plain")
    assert out.returncode == 0, out.stderr
    names = _box_names(to_dot(graph("unet"), depth=1))
    at = {names[f[1]]: (float(f[2]), float(f[3])) for f in (line.split() for line in out.stdout.decode().splitlines())
          if f[0] == "node" and f[1] in names}
    for k in range(1, 5):
        (dx, dy), (ux, uy) = at[f"down{k}"], at[f"up{k}"]
        assert abs(dy - uy) < 1e-6 and ux > dx, k
    assert at["down1"][1] > at["down2"][1] > at["down3"][1] > at["bottom"][1]  # y grows upwards in `plain`


def test_several_outputs_are_drawn_as_named_ovals():
    g = cnndsl.load(SPECS / "googlenet_torchvision.cnn", "googlenet_aux").graph
    text = to_dot(g, depth=1)
    ovals = re.findall(r"^\s*out\d+ \[label=<<B>(\w+)</B><BR/>1000(<BR/>training only)?>", text, re.M)
    assert ovals == [("output", ""), ("aux1", "<BR/>training only"), ("aux2", "<BR/>training only")]
    assert "13,004,888 params, 1,498,376,192 MACs (1,506,748,416 in training)" in text
