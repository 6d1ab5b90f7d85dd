"""What a Network shows in Jupyter: the totals, the layer table and the diagram as HTML (``network_html``);
the diagram (``Diagram``) and charts (``Chart``) as objects that render as SVG and save as files.

Pure views: they read ir.Graph and call Graphviz (views.diagram) and matplotlib (views.plot); every name
from a spec is escaped before it goes into HTML.
"""

from __future__ import annotations

import html

from cnndsl.errors import GraphError
from cnndsl.lang.show import fmt_shape, human_bytes
from cnndsl.model.counts import totals
from cnndsl.model.ir import TRAINABLE, Graph
from cnndsl.views import diagram as diagrams
from cnndsl.views import report
from cnndsl.views.graph import fitting_depth, to_dot

FOLD_ROWS = 40  # a longer layer table is folded (<details>) under its row count

_STYLE = ("font-family: system-ui, sans-serif; font-size: 13px; border-collapse: collapse; "
          "font-variant-numeric: tabular-nums")


class Diagram:
    """The architecture as Graphviz draws it (``cnndsl graph``): renders as SVG in Jupyter, ``.save(path)``
    writes .svg, .png, .pdf or .dot. Without Graphviz, ``.dot`` still works and ``.svg`` raises GraphError.

    >>> net = cnndsl.load("specs/resnet50.cnn")
    >>> d = net.graph()            # a depth that fits a page; net.graph(depth=1); net.graph(depth=None): all
    >>> d.depth, d.dot.startswith("digraph")
    (2, True)
    >>> d.save("resnet50.svg")
    []
    """

    def __init__(self, graph: Graph, depth: int | None) -> None:
        self.name = graph.name
        self.depth = depth
        self.dot = to_dot(graph, depth)
        self._svg: str | None = None

    @property
    def svg(self) -> str:
        """The SVG text (Graphviz's `dot` runs once; text drawn as outlines, as in the PNG).

        >>> "<svg" in cnndsl.load("specs/lenet5.cnn").graph().svg
        True
        """
        if self._svg is None:
            self._svg = diagrams.browser_svg(self.dot, f"{self.name}.svg")
        return self._svg

    def save(self, path: str) -> list[str]:
        """Write the diagram in the format ``path``'s extension names; returns Graphviz's warnings.

        >>> cnndsl.load("specs/resnet50.cnn").graph(depth=1).save("resnet50.png")
        []
        """
        return diagrams.write_diagram(self.dot, path)

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg
        except GraphError:
            return None  # Jupyter shows the repr instead

    def __repr__(self) -> str:
        depth = "every layer" if self.depth is None else f"depth {self.depth}"
        return f"<Diagram of {self.name}, {depth}: .svg, .dot, .save(path)>"


class Chart:
    """A matplotlib chart (``cnndsl plot``): renders as SVG in Jupyter, ``.save(path)`` writes .png, .svg
    or .pdf, and ``.figure`` is the matplotlib Figure to adjust.

    >>> chart = cnndsl.load("specs/resnet50.cnn").plot()
    >>> chart.save("resnet50_layers.png")
    >>> chart.figure.get_size_inches().round(1)
    array([16. ,  5.9])
    """

    def __init__(self, figure, description: str) -> None:
        self.figure = figure
        self.description = description

    def _repr_svg_(self) -> str:
        import io

        import matplotlib

        from cnndsl.views.plot import SVG_SALT

        out = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": SVG_SALT}):
            self.figure.savefig(out, format="svg", metadata={"Date": None})
        return out.getvalue().decode("utf-8")

    def save(self, path: str) -> None:
        """Write the chart as .png, .svg or .pdf (by ``path``'s extension), whole or not at all.

        >>> cnndsl.load("specs/resnet50.cnn").plot(size=(1200, 500)).save("resnet50_layers.svg")
        """
        from cnndsl.views.plot import check_output, save_figure

        save_figure(self.figure, path, check_output(path))

    def __repr__(self) -> str:
        return f"<Chart: {self.description}: .save(path), .figure>"


def network_html(graph: Graph) -> str:
    """The totals, the layer table (folded when long) and the diagram at a fitting depth (where Graphviz is
    installed), as one HTML fragment."""
    e = html.escape
    t = totals(graph)
    head = f"<b>{e(graph.name)}</b>" + (f": {e(graph.title)}" if graph.title else "")
    facts = [("input", fmt_shape(graph.input_shape)), ("output", fmt_shape(graph.output_shape)),
             ("parameters", f"{t.params:,} trainable" + (f" + {t.buffers:,} buffers" if t.buffers else "")),
             ("MACs", f"{t.macs:,} ({t.flops:,} FLOPs)"),
             ("weights", f"{human_bytes(t.weight_bytes)} (float32)"),
             ("activations", f"{human_bytes(t.activation_bytes)} per sample"), ("depth", f"{t.depth} weighted layers")]
    cell = 'style="text-align:left; padding:1px 10px 1px 0"'
    num = 'style="text-align:right; padding:1px 0 1px 12px"'
    rows = "".join(f"<tr><td {cell}>{e(k)}</td><td {cell}>{e(v)}</td></tr>" for k, v in facts)
    out = [f'<div style="font-family: system-ui, sans-serif; font-size: 13px">{head}',
           f'<table style="{_STYLE}">{rows}</table>']
    total = t.params or 1
    layer_rows = []
    for i, node in enumerate(graph.nodes):
        params = node.count(TRAINABLE)
        source = graph.source_of(i)
        options = node.layer.describe() + (f"  from: {source}" if source else "")
        share = report.share(params, total)
        cells = [f"<td {cell}>{e(node.name)}</td>", f"<td {cell}>{e(node.kind)}</td>",
                 f"<td {cell}>{e(options)}</td>", f"<td {num}>{e(fmt_shape(node.out_shape))}</td>",
                 f"<td {num}>{params:,}</td>" if params else f"<td {num}></td>", f"<td {num}>{share}</td>",
                 f"<td {num}>{node.macs:,}</td>" if node.macs else f"<td {num}></td>"]
        layer_rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th {num if k >= 3 else cell}>{h}</th>"
                     for k, h in enumerate(["layer", "kind", "options", "output", "params", "%", "MACs"]))
    table = f'<table style="{_STYLE}"><tr>{header}</tr>{"".join(layer_rows)}</table>'
    count = len(graph.nodes)
    fold = " open" if count <= FOLD_ROWS else ""
    out.append(f"<details{fold}><summary>{count} layers</summary>{table}</details>")
    try:
        depth = fitting_depth(graph)
        svg = Diagram(graph, depth).svg
        what = "every layer" if depth is None else f"blocks below depth {depth} folded; net.graph(depth=N) for more"
        out.append(f"<details><summary>diagram ({e(what)})</summary>{svg}</details>")
    except GraphError:
        out.append("<p><i>install Graphviz (apt install graphviz) to see the diagram here</i></p>")
    out.append("</div>")
    return "\n".join(out)
