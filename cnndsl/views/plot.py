"""Charts from checked graphs (`cnndsl plot`): the lineage's parameters and MACs, or where one
network's parameters sit, layer by layer. The data behind each chart is computed by a pure
function; matplotlib (Agg, no screen) is imported only to draw."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cnndsl.errors import CnnDslError
from cnndsl.model.counts import depth
from cnndsl.model.ir import TRAINABLE, Graph

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DPI = 100  # --size is in pixels: inches = pixels / DPI
MAX_ROWS = 60  # more weighted layers than this are shown per block, or per range of layers (see layer_data)
MAX_PANELS = 6  # --per-layer charts in one file
GROUPS = ("conv", "dense", "norm")  # layer categories (Layer.category) with a bar colour of their own
COLOURS = {"conv": "#3b75af", "dense": "#ef8636", "norm": "#519e3e", "other": "#8c8c8c",
           "CNN": "#3b75af", "MLP": "#ef8636"}
LEGEND = {"CNN": "CNN (convolutions)", "MLP": "MLP (dense only)"}
UNITS = {"layer": "layer", "block": "block", "range": "range of layers"}  # LayerChart.unit -> the title's words
SVG_SALT = "cnndsl"  # matplotlib's svg.hashsalt while saving: the same ids in every run


@dataclass(frozen=True)
class NetworkBar:
    """One network of the lineage chart. ``family`` is CNN (it has convolutions) or MLP."""

    name: str
    year: int | None
    params: int
    macs: int
    family: str
    top5: float | None = None  # ImageNet top-5 error, percent, where the spec gives it

    @property
    def label(self) -> str:
        facts = ([str(self.year)] if self.year else []) + ([f"top-5 {self.top5:g}%"] if self.top5 is not None else [])
        return f"{self.name} ({', '.join(facts)})" if facts else self.name


def lineage_data(graphs: list[Graph]) -> list[NetworkBar]:
    """The networks in lineage order, as `cnndsl params` lists them: by year (none first), then depth."""
    bars = []
    for g in sorted(graphs, key=lambda g: (g.year or 0, depth(g))):
        convs = any(n.layer.category in ("conv", "filter") for n in g.nodes)
        bars.append(NetworkBar(g.name, g.year, sum(n.count(TRAINABLE) for n in g.nodes),
                               sum(n.macs for n in g.nodes), "CNN" if convs else "MLP", g.top5))
    return bars


def parameter_free(bars: list[NetworkBar]) -> tuple[list[NetworkBar], list[NetworkBar]]:
    """(the networks with trainable parameters, those without): a fixed filter bank has no bar on a log
    axis of parameters, so it is named under the chart instead."""
    return [b for b in bars if b.params], [b for b in bars if not b.params]


def gap_note(bars: list[NetworkBar]) -> str | None:
    """'mlp_12mp has 2,039,334x the parameters of lenet5': the largest MLP against the smallest CNN."""
    mlps = [b for b in bars if b.family == "MLP" and b.params]
    cnns = [b for b in bars if b.family == "CNN" and b.params]
    if not mlps or not cnns:
        return None
    big = max(mlps, key=lambda b: b.params)
    small = min(cnns, key=lambda b: b.params)
    return f"MLP vs CNN: {big.name} has {big.params / small.params:,.0f}x the parameters of {small.name}"


@dataclass(frozen=True)
class LayerRow:
    """One bar of the per-layer chart: a layer, or a block of layers, and its trainable
    parameters by category (conv, dense, batchnorm, other)."""

    label: str
    params: dict[str, int]
    macs: int = 0

    @property
    def total(self) -> int:
        return sum(self.params.values())


@dataclass(frozen=True)
class LayerChart:
    name: str
    title: str | None
    rows: list[LayerRow]
    total: int
    shares: dict[str, float] = field(default_factory=dict)  # category -> fraction of total, largest first
    unit: str = "layer"  # what one bar is: a layer, a block, or a range of consecutive layers or blocks

    @property
    def share_note(self) -> str:
        """'dense layers hold 96.2% of the 60,965,224 parameters; conv 3.8%'."""
        parts = [f"{kind} {percent(share)}" for kind, share in self.shares.items()]
        if not parts:
            return "no trainable parameters"
        first, *rest = parts
        kind, share = first.split(" ")
        note = f"{kind} layers hold {share} of the {self.total:,} parameters"
        return note + ("; " + ", ".join(rest) if rest else "")


def layer_data(graph: Graph) -> LayerChart:
    """Trainable parameters per layer, in written order. With more than MAX_ROWS weighted layers
    (ResNet-50 has 107, counting batchnorms) the layers are summed per block: the deepest prefix
    of their names (``layer1.0``) that gives at most MAX_ROWS bars. Where even the first part of
    the names gives more (3,000 layers in a row), consecutive bars are summed into ranges
    (``0..49``), so a chart never has more than MAX_ROWS bars."""
    weighted = [n for n in graph.nodes if n.count(TRAINABLE)]
    deepest = max((len(n.name.split(".")) for n in weighted), default=1)
    keep = deepest
    while keep > 1 and len({_prefix(n.name, keep) for n in weighted}) > MAX_ROWS:
        keep -= 1
    groups: dict[str, list] = {}
    for n in weighted:
        groups.setdefault(_prefix(n.name, keep), []).append(n)
    keys = list(groups)
    size = max(1, -(-len(keys) // MAX_ROWS))  # groups per bar: 1 unless there are more than MAX_ROWS
    rows = []
    for start in range(0, len(keys), size):
        chunk = keys[start:start + size]
        nodes = [n for key in chunk for n in groups[key]]
        params: dict[str, int] = {}
        for n in nodes:
            kind = n.layer.category if n.layer.category in GROUPS else "other"
            params[kind] = params.get(kind, 0) + n.count(TRAINABLE)
        rows.append(LayerRow(_row_label(chunk, nodes), params, sum(n.macs for n in nodes)))
    total = sum(r.total for r in rows)
    by_kind: dict[str, int] = {}
    for r in rows:
        for kind, count in r.params.items():
            by_kind[kind] = by_kind.get(kind, 0) + count
    shares = {k: v / total for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])} if total else {}
    unit = "range" if size > 1 else "block" if keep < deepest else "layer"
    return LayerChart(graph.name, graph.title, rows, total, shares, unit)


def _prefix(name: str, keep: int) -> str:
    return ".".join(name.split(".")[:keep])


def _row_label(keys: list[str], nodes: list) -> str:
    """'features.0: conv 96 11x11 stride=4' for one layer (by its own name, even where it is all
    that a block weighs); 'layer1.0 (4 conv, 4 batchnorm)' for a block; '0..49 (50 dense)' for a range."""
    if len(nodes) == 1:
        return f"{nodes[0].name}: {nodes[0].kind} {nodes[0].layer.describe()}".strip()
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.kind] = counts.get(n.kind, 0) + 1
    name = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
    return f"{name} ({', '.join(f'{count} {kind}' for kind, count in counts.items())})"


def percent(share: float) -> str:
    """A share as '61.9%', or '<0.1%' where one decimal would round a nonzero share to 0.0%."""
    return "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def short(n: float) -> str:
    """A count in a few characters: 81, 61.7K, 61.0M, 125.8B; 1.0e+15 and beyond in powers of ten."""
    if n >= 1e15:
        return f"{n:.1e}"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:,.0f}"


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'1400x800' (pixels) -> (1400, 800); None stays None (the chart picks its size)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise CnnDslError(f"--size '{text}' is not WIDTHxHEIGHT in pixels", hint="e.g. --size 1400x800")
    width, height = int(parts[0]), int(parts[1])
    if not (200 <= width <= 10000 and 200 <= height <= 10000):
        raise CnnDslError(f"--size {width}x{height} is out of range", hint="each side from 200 to 10000 pixels")
    return width, height


def check_output(path: str) -> str:
    """The matplotlib format for ``path`` (by extension), or an error that says what is accepted."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise CnnDslError(f"unknown chart format '{ext or '(no extension)'}'", path=path,
                          hint="name the output .png, .svg or .pdf")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CnnDslError(f"the folder {os.path.dirname(path)} does not exist", path=path,
                          hint="create it first, or write the chart elsewhere")
    if os.path.isdir(path):
        raise CnnDslError("is a folder", path=path, hint="name a file, e.g. chart.png")
    return FORMATS[ext]


def plot_command(graphs: list[Graph], output: str, per_layer: bool = False, size: str | None = None) -> str:
    """Draw the chart for ``graphs`` into ``output``; returns a one-line description of it."""
    fmt = check_output(output)
    pixels = parse_size(size)
    if not graphs:
        raise CnnDslError("no specs to plot", hint="give one spec (parameters per layer) or several (lineage)")
    if per_layer or len(graphs) == 1:
        if len(graphs) > MAX_PANELS:
            raise CnnDslError(f"--per-layer draws one panel per spec; {len(graphs)} specs is more than "
                              f"{MAX_PANELS}", hint="plot fewer specs, or leave out --per-layer for the lineage")
        charts = [layer_data(g) for g in graphs]
        for g, chart in zip(graphs, charts, strict=True):
            if not chart.total:
                raise CnnDslError(f"{g.name} has no trainable parameters: no per-layer chart to draw",
                                  path=g.path, hint="plot it beside other specs for the lineage chart")
        fig = layers_figure(charts, pixels)
        what = "; ".join(f"{c.name}: {c.share_note}" for c in charts)
    else:
        bars = lineage_data(graphs)
        fig = lineage_figure(bars, gap_note(bars), pixels)
        what = f"parameters and MACs of {len(bars)} networks, by year"
    save_figure(fig, output, fmt)
    return f"wrote {output}: {what}"


def lineage_svg(graphs: list[Graph], pixels: tuple[int, int] = (1100, 600)) -> tuple[str, str | None]:
    """The lineage chart of ``graphs`` as SVG text, in memory (the playground's tab), and the gap note."""
    import io

    import matplotlib

    bars = lineage_data(graphs)
    note = gap_note(bars)
    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT}):
        lineage_figure(bars, note, pixels).savefig(out, format="svg", dpi=DPI, metadata={"Date": None})
    return out.getvalue().decode("utf-8"), note


def save_figure(fig, output: str, fmt: str) -> None:
    """Publish the chart at ``output`` (cnndsl.io). The same chart gives the same bytes: no dates in
    the file, and SVG ids hashed with a fixed salt (set only while saving)."""
    import matplotlib

    from cnndsl.io import publish

    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
    with publish(lambda exc: _write_error(output, exc)) as pub, open(pub.file(output), "wb") as fh, \
            matplotlib.rc_context({"svg.hashsalt": SVG_SALT}):
        fig.savefig(fh, format=fmt, dpi=DPI, metadata=metadata)


def _write_error(output: str, exc: OSError) -> CnnDslError:
    """'cannot write the chart: No space left on device', naming the output."""
    return CnnDslError(f"cannot write the chart: {exc.strerror or exc}", path=output,
                       hint="write it to a folder you can write to, with space to spare")


def _figure(pixels: tuple[int, int]):
    """A matplotlib Figure on the Agg canvas (no screen, no pyplot state), ``pixels`` wide x high."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(pixels[0] / DPI, pixels[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend(ax, kinds: list[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=COLOURS[k], label=LEGEND.get(k, k)) for k in kinds]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def lineage_figure(bars: list[NetworkBar], note: str | None, pixels: tuple[int, int] | None):
    """Two panels, parameters and MACs, one log-scale bar per network, earliest at the top (with its top-5
    error where known); the networks without trainable parameters are named under the chart."""
    bars, apart = parameter_free(bars)
    if not bars:
        raise CnnDslError("none of these networks has trainable parameters: no lineage to chart",
                          hint="plot networks that learn, or one spec for its per-layer chart")
    fig = _figure(pixels or (1400, 170 + 28 * len(bars) + (24 if apart else 0)))
    if apart:  # under the axes, in the space the layout keeps for it
        fig.supxlabel("no trainable parameters: " + ", ".join(b.name for b in apart), fontsize=9, color="#555555")
    axes = fig.subplots(1, 2, sharey=True)
    rows = list(range(len(bars)))
    for ax, what, title in zip(axes, ("params", "macs"), ("trainable parameters", "MACs per sample"), strict=True):
        values = [float(getattr(b, what)) for b in bars]  # counts beyond 2^64 are Python ints numpy cannot take
        positive = [v for v in values if v] or [1]
        low, high = min(positive) / 4, max(positive) * 80  # room on the right for the value labels
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        for row, bar, value in zip(rows, bars, values, strict=True):
            if value:
                ax.barh(row, value - low, left=low, color=COLOURS[bar.family], height=0.7)
            ax.text(max(value, low) * 1.25, row, short(value), va="center", fontsize=8)
        ax.set_title(f"{title} (log scale)", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(rows, [b.label for b in bars], fontsize=9)
    axes[0].set_ylim(len(rows) - 0.4, -0.6)  # earliest at the top
    _legend(axes[1], sorted({b.family for b in bars}))
    fig.suptitle("Parameters and MACs per network, in order of year" + (f"\n{note}" if note else ""),
                 fontsize=12)
    return fig


def layers_figure(charts: list[LayerChart], pixels: tuple[int, int] | None):
    """One row per network: stacked bars of trainable parameters per layer (or block), coloured by kind,
    each labelled with its count and share (the title states the kinds' shares), and beside them the same
    rows' MACs: where the weights are is seldom where the arithmetic is."""
    heights = [len(c.rows) + 4 for c in charts]
    fig = _figure(pixels or (1600, max(320, 40 + 24 * sum(heights))))
    axes = fig.subplots(len(charts), 2, height_ratios=heights, width_ratios=[3, 2], squeeze=False, sharey="row")
    for (params_ax, macs_ax), chart in zip(axes, charts, strict=True):
        _layer_panel(params_ax, chart)
        _macs_panel(macs_ax, chart)
    return fig


def _macs_panel(ax, chart: LayerChart) -> None:
    from matplotlib.ticker import FuncFormatter

    rows = list(range(len(chart.rows)))
    values = [r.macs for r in chart.rows]
    total = sum(values) or 1
    ax.barh(rows, values, color="#7a5195", height=0.7)
    longest = max(values) or 1
    for row, value in zip(rows, values, strict=True):
        if value:  # a batchnorm's arithmetic is not multiply-adds: no label
            ax.text(value + longest * 0.005, row, f" {short(value)} ({percent(value / total)})", va="center",
                    fontsize=8)
    ax.set_xlim(0, longest * 1.3)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"MACs per {UNITS[chart.unit]}\n{short(total)} per sample", fontsize=11)


def _layer_panel(ax, chart: LayerChart) -> None:
    from matplotlib.ticker import FuncFormatter

    order = [k for k in (*GROUPS, "other") if k in chart.shares]
    rows = list(range(len(chart.rows)))
    left = [0] * len(rows)
    for kind in order:
        widths = [r.params.get(kind, 0) for r in chart.rows]
        ax.barh(rows, widths, left=left, color=COLOURS[kind], height=0.7)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    longest = max(r.total for r in chart.rows)
    for row, r in zip(rows, chart.rows, strict=True):
        ax.text(r.total + longest * 0.005, row, f" {short(r.total)} ({percent(r.total / chart.total)})",
                va="center", fontsize=8)
    ax.set_xlim(0, longest * 1.22)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
    ax.set_yticks(rows, [r.label for r in chart.rows], fontsize=8 if len(rows) > 20 else 9)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first layer at the top, no empty rows
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{chart.name}: trainable parameters per {UNITS[chart.unit]}\n{chart.share_note}", fontsize=11)
    _legend(ax, order)
