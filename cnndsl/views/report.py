"""Reports from a checked graph: the per-layer summary, totals, the comparison table, JSON."""

from __future__ import annotations

import os
from dataclasses import asdict

from cnndsl.lang.show import fmt_shape, human_bytes
from cnndsl.model.counts import Totals, depth, totals
from cnndsl.model.ir import BUFFER, CONSTANT, TRAINABLE, Graph

__all__ = ["Totals", "totals", "depth", "human_bytes", "as_json", "summary", "totals_lines", "one_line", "compare"]


def as_json(path: str, graph: Graph) -> dict:
    return {"spec": path, "name": graph.name, "title": graph.title, "year": graph.year, "top5_error": graph.top5,
            "input": list(graph.input_shape), "output": list(graph.output_shape),
            "outputs": [{"name": o.name, "shape": list(graph.shape_of(o.index)), "training_only": o.train}
                        for o in graph.output_list()], **asdict(totals(graph))}


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    rule = "-" * len(line(header))
    return [line(header), rule] + [line(r) for r in rows] + [rule]


def summary(graph: Graph) -> str:
    """The per-layer table, like Keras' summary() or torchinfo, with totals.

    'params' are trainable; a 'fixed' column (buffers and constant kernels) appears when any exist.
    """
    head = f"{graph.name}" + (f": {graph.title}" if graph.title else "")
    fixed = any(n.count(BUFFER) or n.count(CONSTANT) for n in graph.nodes)
    rows = []
    for i, node in enumerate(graph.nodes):
        source = graph.source_of(i)
        options = node.layer.describe() + (f"  from: {source}" if source else "")
        row = [node.name, node.kind, options.strip(), fmt_shape(node.out_shape),
               f"{node.count(TRAINABLE):,}", f"{node.macs:,}"]
        if fixed:
            row.insert(5, f"{node.count(BUFFER) + node.count(CONSTANT):,}")
        rows.append(row)
    header = ["layer", "kind", "options", "output", "params", "MACs"]
    if fixed:
        header.insert(5, "fixed")
    lines = [head, f"input {fmt_shape(graph.input_shape)}", ""]
    lines += _table(header, rows, set(range(4, len(header))))
    lines += output_lines(graph)
    lines += totals_lines(graph)
    return "\n".join(lines)


def output_lines(graph: Graph) -> list[str]:
    """The network's outputs, where it has more than one: name, shape, the layer that makes it."""
    outs = graph.output_list()
    if len(outs) < 2:
        return []
    rows = [[o.name, fmt_shape(graph.shape_of(o.index)), graph.nodes[o.index].name if o.index >= 0 else "input",
             "training only" if o.train else ""] for o in outs]
    width = [max(len(r[k]) for r in rows) for k in range(3)]
    lines = [f"  {r[0].ljust(width[0])}  {r[1].ljust(width[1])}  from {r[2].ljust(width[2])}  {r[3]}" for r in rows]
    return ["outputs"] + [line.rstrip() for line in lines]


def totals_lines(graph: Graph) -> list[str]:
    t = totals(graph)
    training = [o.name for o in graph.output_list() if o.train]
    macs = f"MACs                  {t.macs:,}  (FLOPs = 2 x MACs = {t.flops:,})"
    if t.training_macs != t.macs:
        macs += f"; {t.training_macs:,} in training, with {', '.join(training)}"
    return [
        f"trainable parameters  {t.params:,}",
        f"buffers               {t.buffers:,}" + ("  (batchnorm running statistics)" if t.buffers else ""),
        f"constant weights      {t.constants:,}" + ("  (fixed kernels)" if t.constants else ""),
        f"weight bytes          {t.weight_bytes:,}  ({human_bytes(t.weight_bytes)}, float32)",
        macs,
        f"activations           {t.activation_bytes:,} bytes per sample ({human_bytes(t.activation_bytes)})",
    ]


def one_line(path: str, graph: Graph) -> str:
    t = totals(graph)
    extra = f" + {t.buffers:,} buffers" if t.buffers else ""
    extra += f" + {t.constants:,} constants" if t.constants else ""
    others = [f"{o.name} {fmt_shape(graph.shape_of(o.index))}" + (" in training" if o.train else "")
              for o in graph.output_list()[1:]]
    return (f"{path}: {graph.name}: {t.params:,} parameters{extra}, {t.macs:,} MACs, "
            f"{human_bytes(t.weight_bytes)} of weights, {fmt_shape(graph.input_shape)} -> "
            f"{fmt_shape(graph.output_shape)}" + (f" (and {', '.join(others)})" if others else ""))


def compare(items: list[tuple[str, Graph]]) -> str:
    """Several specs side by side, in lineage order (by year, then depth; specs without a year
    first); each count also as a ratio to the smallest."""
    ts = [(path, g, totals(g)) for path, g in items]
    ts.sort(key=lambda row: (row[1].year or 0, row[2].depth))
    min_p = min((t.params for _, _, t in ts if t.params), default=1)
    min_m = min((t.macs for _, _, t in ts if t.macs), default=1)
    # the file column only when it says more than the network's name
    show_path = any(os.path.splitext(os.path.basename(path))[0] != g.name for path, g, _ in ts)
    rows = []
    for path, g, t in ts:
        row = [g.name, str(g.year or ""), f"{g.top5:g}%" if g.top5 is not None else "",
               str(t.depth), f"{t.params:,}", f"{t.params / min_p:,.1f}x", f"{t.macs:,}",
               f"{t.macs / min_m:,.1f}x", human_bytes(t.weight_bytes)]
        rows.append([path] + row if show_path else row)
    header = ["network", "year", "top-5", "depth", "params", "vs min", "MACs", "vs min", "weights"]
    if show_path:
        header.insert(0, "spec")
    first_number = 2 if show_path else 1
    return "\n".join(_table(header, rows, set(range(first_number, len(header)))))


def layers_json(graph: Graph) -> list[dict]:
    """Each layer as data: name, kind, options, output shape, counts by role, MACs."""
    return [{"name": n.name, "kind": n.kind, "options": n.layer.describe(), "output": list(n.out_shape),
             "params": n.count(TRAINABLE), "buffers": n.count(BUFFER), "constants": n.count(CONSTANT),
             "macs": n.macs} for n in graph.nodes]


def weights_json(graph: Graph) -> list[dict]:
    """The weights a weights file may give, by name: shape and role."""
    return [{"name": p.name, "shape": list(p.shape), "role": p.role} for p in graph.params()]


def weight_lines(graph: Graph) -> list[str]:
    """The weights a weights file may give, one line each: name, shape, role, in columns."""
    params = list(graph.params())
    width = max((len(p.name) for p in params), default=4)
    return [f"{p.name:<{width}}  {fmt_shape(p.shape):<16}  {p.role}" for p in params]
