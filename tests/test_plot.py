"""`cnndsl plot`: the data behind each chart (exact), the files written, and the errors."""

from __future__ import annotations

import errno
import subprocess
import sys
import time

import pytest
from helpers import ROOT, SPECS, cpu_seconds, graph

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.model.ir import TRAINABLE
from cnndsl.views import report
from cnndsl.views.plot import (
    MAX_PANELS,
    MAX_ROWS,
    gap_note,
    layer_data,
    lineage_data,
    parse_size,
    percent,
    plot_command,
    short,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_lineage_data_is_in_the_params_table_order_with_exact_totals():
    names = ["resnet50", "mlp_12mp", "alexnet", "lenet5", "vgg16", "mlp_mnist", "googlenet", "filters"]
    graphs = [graph(n) for n in names]
    bars = lineage_data(graphs)
    table = report.compare([(str(SPECS / f"{n}.cnn"), g) for n, g in zip(names, graphs, strict=True)])
    assert [b.name for b in bars] == [line.split()[0] for line in table.splitlines()[2:-1]]
    by_name = {b.name: b for b in bars}
    assert (by_name["alexnet"].params, by_name["alexnet"].macs) == (60_965_224, 724_406_816)
    assert (by_name["lenet5"].params, by_name["lenet5"].macs) == (61_706, 416_520)
    assert by_name["mlp_12mp"].params == 125_839_131_000 and by_name["filters"].params == 0
    assert {b.name for b in bars if b.family == "MLP"} == {"mlp_12mp", "mlp_mnist"}
    assert by_name["alexnet"].label == "alexnet (2012, top-5 15.3%)" and by_name["mlp_12mp"].label == "mlp_12mp"


def test_gap_note_compares_the_largest_mlp_with_the_smallest_cnn():
    bars = lineage_data([graph("mlp_mnist"), graph("lenet5"), graph("mlp_12mp"), graph("filters")])
    assert gap_note(bars) == "MLP vs CNN: mlp_12mp has 2,039,334x the parameters of lenet5"
    assert gap_note(lineage_data([graph("lenet5"), graph("alexnet")])) is None


def test_alexnet_dense_layers_hold_96_percent():
    chart = layer_data(graph("alexnet"))
    assert [r.total for r in chart.rows] == [34_944, 307_456, 885_120, 663_936, 442_624,
                                             37_752_832, 16_781_312, 4_097_000]
    assert chart.rows[0].label == "features.0: conv 96 11x11 stride=4"
    assert chart.rows[-1].label == "classifier.6: dense 1000" and chart.rows[-1].params == {"dense": 4_097_000}
    assert chart.total == 60_965_224 and chart.unit == "layer"
    assert chart.shares == {"dense": 58_631_144 / 60_965_224, "conv": 2_334_080 / 60_965_224}
    assert chart.share_note == "dense layers hold 96.2% of the 60,965,224 parameters; conv 3.8%"


def test_resnet50_is_shown_per_block():
    chart = layer_data(graph("resnet50"))
    assert chart.unit == "block" and len(chart.rows) == 19 and chart.total == 25_557_032
    assert [r.label for r in chart.rows[:3]] == ["conv1: conv 64 7x7 stride=2 pad=3 bias=false", "bn1: batchnorm",
                                                 "layer1.0 (4 conv, 4 batchnorm)"]
    assert chart.rows[-1].params == {"dense": 2_049_000}
    assert chart.rows[2].params == {"conv": 73_728, "norm": 1_280}  # 1x1, 3x3, 1x1 and the projection
    assert list(chart.shares) == ["conv", "dense", "norm"]
    assert chart.share_note.startswith("conv layers hold 91.8% of the 25,557,032 parameters; dense 8.0%")


def test_a_block_with_one_weighted_layer_is_labelled_with_that_layer():
    g = cnndsl.parse("input 8\nb: repeat 70 dense 8\nhead: { relu; fc: dense 4 }\n").graph
    chart = layer_data(g)
    assert chart.unit == "block" and [r.label for r in chart.rows] == ["b (70 dense)", "head.fc: dense 4"]


def test_a_long_flat_network_is_drawn_as_ranges_of_layers(tmp_path):
    from PIL import Image

    g = cnndsl.parse("input 8\nrepeat 3000 dense 8\n").graph
    chart = layer_data(g)
    assert len(chart.rows) <= MAX_ROWS and chart.unit == "range"
    assert chart.total == sum(r.total for r in chart.rows) == sum(n.count(TRAINABLE) for n in g.nodes) == 3000 * 72
    assert chart.rows[0].label == "0..49 (50 dense)" and chart.rows[-1].label == "2950..2999 (50 dense)"
    assert chart.rows[0].params == {"dense": 50 * 72}
    # drawn as MAX_ROWS bars, it costs about what a network of MAX_ROWS layers costs (CPU time)
    rows = cnndsl.parse(f"input 8\nrepeat {MAX_ROWS} dense 8\n").graph
    base = cpu_seconds(lambda: plot_command([rows], str(tmp_path / "rows.png")))
    cost = cpu_seconds(lambda: plot_command([g], str(tmp_path / "flat.png")))
    assert cost < 2 * base, f"{cost:.2f} s of CPU for 3000 layers, {base:.2f} s for {MAX_ROWS}"
    with Image.open(tmp_path / "flat.png") as image:
        assert image.size[0] <= 2000 and image.size[1] <= 2500


def test_ranges_keep_blocks_whole_and_the_written_order():
    g = cnndsl.parse("input 8\n" + "".join(f"s{i}: {{ dense 8; relu; dense 8 }}\n" for i in range(130))).graph
    chart = layer_data(g)
    assert len(chart.rows) <= MAX_ROWS and chart.unit == "range" and chart.total == 130 * 144
    assert chart.rows[0].label == "s0..s2 (6 dense)" and chart.rows[-2].label == "s126..s128 (6 dense)"
    assert chart.rows[-1].label == "s129 (2 dense)" and [r.total for r in chart.rows] == [3 * 144] * 43 + [144]


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (81, "81"), (61_706, "61.7K"), (60_965_224, "61.0M"),
                                             (125_839_131_000, "125.8B")])
def test_short(value, text):
    assert short(value) == text


def test_percent_never_rounds_a_share_to_zero():
    assert (percent(0.0003), percent(0.0), percent(0.9617)) == ("<0.1%", "0.0%", "96.2%")


def test_parse_size():
    assert parse_size("800x500") == (800, 500) and parse_size(None) is None
    for bad in ("800", "axb", "50x50", "800x500x2"):
        with pytest.raises(CnnDslError, match="--size"):
            parse_size(bad)


def test_png_written_with_the_size_asked(tmp_path):
    from PIL import Image

    out = tmp_path / "chart.png"
    message = plot_command([graph("lenet5"), graph("mlp_mnist")], str(out), size="900x420")
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    with Image.open(out) as image:
        assert image.size == (900, 420)
    assert message == f"wrote {out}: parameters and MACs of 2 networks, by year"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]  # no temporary file left


def test_one_spec_gives_the_per_layer_chart_in_svg_and_pdf(tmp_path):
    message = plot_command([graph("alexnet")], str(tmp_path / "a.svg"))
    assert "dense layers hold 96.2%" in message
    assert (tmp_path / "a.svg").read_bytes().startswith(b"<?xml")
    plot_command([graph("lenet5"), graph("alexnet")], str(tmp_path / "a.pdf"), per_layer=True)
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"


def test_the_same_chart_is_the_same_bytes(tmp_path):
    import matplotlib

    formats = [".svg", ".pdf", ".png"]
    for ext in formats:
        plot_command([graph("lenet5")], str(tmp_path / f"a{ext}"))
    time.sleep(1.1)  # a date stamped to the second would differ (one wait for the three formats)
    for ext in formats:
        plot_command([graph("lenet5")], str(tmp_path / f"b{ext}"))
        assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes(), ext
    assert matplotlib.rcParams["svg.hashsalt"] is None  # set only while saving


@pytest.mark.parametrize("target", ["cnndsl.io._make_staging", "matplotlib.figure.Figure.savefig"])
def test_a_folder_that_cannot_be_written_is_a_clean_error(tmp_path, monkeypatch, target, cli):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(target, fail)
    out = tmp_path / "chart.png"
    with pytest.raises(CnnDslError, match="cannot write the chart: No space left on device") as err:
        plot_command([graph("lenet5")], str(out))
    assert err.value.path == str(out) and err.value.hint
    assert list(tmp_path.iterdir()) == []
    r = cli("plot", SPECS / "lenet5.cnn", "-o", out)
    assert r.exit_code == 1 and f"{out}: error: cannot write the chart: No space left on device" in r.stderr
    assert "Traceback" not in r.output and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("graphs", "kwargs", "message"), [
    (["lenet5"], {"output": "chart.jpg"}, "unknown chart format '.jpg'"),
    (["lenet5"], {"output": "chart"}, "unknown chart format '(no extension)'"),
    ([], {"output": "chart.png"}, "no specs to plot"),
    (["filters"], {"output": "chart.png"}, "filters has no trainable parameters"),
    (["lenet5"] * (MAX_PANELS + 1), {"output": "chart.png", "per_layer": True}, "one panel per spec"),
    (["lenet5"], {"output": "missing/chart.png"}, "does not exist"),
])
def test_errors_write_nothing(tmp_path, graphs, kwargs, message):
    kwargs["output"] = str(tmp_path / kwargs["output"])
    with pytest.raises(CnnDslError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        plot_command([graph(n) for n in graphs], **kwargs)
    assert err.value.hint
    assert list(tmp_path.iterdir()) == []


def test_cli_plot_lineage(tmp_path, cli):
    out = tmp_path / "lineage.png"
    r = cli("plot", SPECS / "mlp_mnist.cnn", SPECS / "lenet5.cnn", "-o", out, "--size", "800x500")
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == PNG_MAGIC and f"wrote {out}" in r.stdout


def test_cli_plot_bad_spec_points_at_it_and_writes_nothing(tmp_path, cli):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 1x8x8\nconv 4 3x3\nmaxpol 2\n")
    out = tmp_path / "chart.png"
    r = cli("plot", SPECS / "lenet5.cnn", bad, "-o", out)
    assert r.exit_code == 1 and f"{bad}:3:1: error: unknown layer 'maxpol'" in r.stderr
    assert "Traceback" not in r.output and not out.exists()


def test_cli_plot_errors(tmp_path, cli):
    r = cli("plot", SPECS / "lenet5.cnn", "-o", tmp_path / "chart.gif")
    assert r.exit_code == 1 and "unknown chart format '.gif'" in r.stderr and "hint:" in r.stderr
    r = cli("plot", "-o", tmp_path / "chart.png")
    assert r.exit_code == 2  # no specs: click's usage error
    assert list(tmp_path.iterdir()) == []


def test_params_does_not_import_matplotlib_or_pillow():
    code = ("import sys\nfrom cnndsl.cli import main\nimport cnndsl.views.plot, cnndsl.views.maps\n"
            "try:\n    main(['params', 'specs/lenet5.cnn'])\nexcept SystemExit:\n    pass\n"
            "assert not {'matplotlib', 'PIL'} & set(sys.modules), sorted(sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_every_parameter_group_is_drawn_in_the_per_layer_chart():
    """Each group of the chart's data is a coloured bar segment (normalisation layers were once left out)."""
    from matplotlib.colors import to_hex

    from cnndsl.views.plot import COLOURS, layers_figure

    chart = layer_data(cnndsl.load(SPECS / "resnet18.cnn").graph)
    fig = layers_figure([chart], None)
    drawn = {to_hex(p.get_facecolor()) for ax in fig.axes for p in ax.patches}
    assert {COLOURS[group] for group in chart.shares} <= drawn


def test_the_lineage_shows_top5_error_where_known():
    bars = {b.name: b for b in lineage_data([graph("alexnet"), graph("resnet18"), graph("mlp_12mp")])}
    assert bars["alexnet"].top5 == 15.3 and bars["alexnet"].label == "alexnet (2012, top-5 15.3%)"
    assert bars["resnet18"].top5 is None and bars["resnet18"].label == "resnet18 (2015)"


def test_networks_without_trainable_parameters_are_listed_apart(tmp_path):
    from cnndsl.views.plot import lineage_figure, parameter_free

    bars = lineage_data([graph("lenet5"), graph("filters"), graph("alexnet"), graph("conv_example")])
    drawn, apart = parameter_free(bars)
    assert [b.name for b in drawn] == ["lenet5", "alexnet"]
    assert sorted(b.name for b in apart) == ["conv_example", "filters"]
    fig = lineage_figure(bars, None, (900, 400))
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["lenet5 (1998)", "alexnet (2012, top-5 15.3%)"]
    note = fig.get_supxlabel()
    assert note.startswith("no trainable parameters: ") and "filters" in note and "conv_example" in note


def test_the_per_layer_chart_has_a_macs_panel():
    from cnndsl.views.plot import layers_figure

    chart = layer_data(graph("alexnet"))
    assert [r.macs for r in chart.rows][:2] == [105_415_200, 223_948_800]
    assert sum(r.macs for r in chart.rows) == sum(n.macs for n in graph("alexnet").nodes if n.params)
    fig = layers_figure([chart], (1200, 500))
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("alexnet: trainable parameters per layer") for t in titles)
    assert any(t.startswith("MACs per layer") for t in titles)
