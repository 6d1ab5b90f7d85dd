"""Reports from a checked graph: the per-layer summary, totals, the comparison table, JSON."""

from __future__ import annotations

import os
from dataclasses import asdict

from cnndsl.lang.show import fmt_shape, human_bytes
from cnndsl.model.counts import FLOAT32, Totals, depth, totals
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


TRAINING_BATCHES = (1, 32, 256)
JOINS = ("add", "concat", "mul")


def summary(graph: Graph, depth: int | None = None, batches: tuple[int, ...] = TRAINING_BATCHES) -> str:
    """The per-layer table, like Keras' summary() or torchinfo, with totals and the training memory.

    'params' are trainable, with their share of the total; a 'non-trainable' column (batchnorm statistics,
    fixed kernels) appears when any exist; a join's row says where its inputs come from. ``depth`` folds
    every block whose name has more parts into one subtotal row, named by its call (torchinfo's depth).
    An unlabelled top-level layer, named by its position, shows as (9).
    """
    head = f"{graph.name}" + (f": {graph.title}" if graph.title else "")
    fixed = any(n.count(BUFFER) or n.count(CONSTANT) for n in graph.nodes)
    total = sum(n.count(TRAINABLE) for n in graph.nodes) or 1
    rows, froms, bare = [], False, False
    for name, indices in _groups(graph, depth):
        nodes = [graph.nodes[i] for i in indices]
        params = sum(n.count(TRAINABLE) for n in nodes)
        if len(indices) == 1 and nodes[0].name == name:
            node = nodes[0]
            source = _sources(graph, indices[0])
            froms = froms or bool(source)
            bare = bare or name.isdigit()
            row = [f"({name})" if name.isdigit() else name, node.kind, node.layer.describe().strip(),
                   fmt_shape(node.out_shape), f"{params:,}", share(params, total), f"{node.macs:,}", source]
        else:
            count = f"{len(nodes)} layers"
            call = graph.calls.get(name)
            row = [name, "block", f"{call}, {count}" if call else count, fmt_shape(nodes[-1].out_shape),
                   f"{params:,}", share(params, total), f"{sum(n.macs for n in nodes):,}", ""]
        if fixed:
            row.insert(6, f"{sum(n.count(BUFFER) + n.count(CONSTANT) for n in nodes):,}")
        rows.append(row)
    header = ["layer", "kind", "options", "output", "params", "%", "MACs", "from"]
    if fixed:
        header.insert(6, "non-trainable")
    if not froms:
        header.pop()
        rows = [r[:-1] for r in rows]
    lines = [head, f"input {fmt_shape(graph.input_shape)}", ""]
    lines += _table(header, rows, set(range(3, header.index("MACs") + 1)))
    if bare:
        lines.append("(n): a layer without a label, named by its position in its block (`run --layer n` shows it)")
    lines += output_lines(graph)
    lines += totals_lines(graph)
    lines += training_lines(graph, batches)
    return "\n".join(lines)


def share(part: int, total: int) -> str:
    """A share of the parameters: '' for none, '<0.1%' for a sliver, else one decimal."""
    if not part:
        return ""
    value = 100 * part / total
    return "<0.1%" if value < 0.05 else f"{value:.1f}%"


def _groups(graph: Graph, depth: int | None) -> list[tuple[str, list[int]]]:
    """(row name, node indices) in order: each node alone, or with ``depth``, the nodes of each block whose
    name has more than ``depth`` parts together under its first ``depth`` parts."""
    groups: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        parts = node.name.split(".")
        key = ".".join(parts[:depth]) if depth is not None and len(parts) > depth else node.name
        groups.setdefault(key, []).append(i)
    return list(groups.items())


def _sources(graph: Graph, index: int) -> str:
    """Where a join's inputs come from (the layers' names; `input` for the network's input), or a layer's
    skip (a `from` that does not read the layer before it); '' for a plain layer. Names inside the join's own
    block are given relative to it (`bn2, downsample.1` for `layer1.0.add`)."""
    node = graph.nodes[index]
    if node.kind in JOINS or len(node.inputs) > 1:
        scope = node.name.rsplit(".", 1)[0] + "." if "." in node.name else ""
        names = [graph.refs.get(j) or ("input" if j < 0 else graph.nodes[j].name) for j in node.inputs]
        inside = [n[len(scope):] if scope and n.startswith(scope) else n for n in names]
        return ", ".join(f"({n})" if n.isdigit() else n for n in inside)
    return graph.source_of(index) or ""


def training_memory(t: Totals, batch: int) -> dict[str, int]:
    """Bytes to train in float32 at ``batch``: weights (with buffers and constants), a gradient for each
    trainable parameter, the optimizer's state (SGD with momentum: one value per parameter; Adam: two),
    and every layer's output for each sample, kept for the backward pass."""
    grads = t.params * FLOAT32
    acts = batch * t.activation_bytes
    return {"weights": t.weight_bytes, "gradients": grads, "sgd_state": grads, "adam_state": 2 * grads,
            "activations": acts, "total_sgd": t.weight_bytes + 2 * grads + acts,
            "total_adam": t.weight_bytes + 3 * grads + acts}


def training_lines(graph: Graph, batches: tuple[int, ...] = TRAINING_BATCHES) -> list[str]:
    """Memory to train, float32, per batch size: the weights, their gradients, the optimizer's state (SGD with
    momentum: one value per parameter; Adam: two), and every layer's output kept for the backward pass."""
    t = totals(graph)
    if not batches or not t.params:  # nothing to train
        return []
    rows = []
    for batch in batches:
        m = training_memory(t, batch)
        keys = ("weights", "gradients", "activations", "total_sgd", "total_adam")
        rows.append([f"{batch:,}"] + [human_bytes(m[key]) for key in keys])
    header = ["batch", "weights", "gradients", "activations", "total, SGD+momentum", "total, Adam"]
    table = _table(header, rows, set(range(len(header))))
    return ["", "training memory, float32 (weights + gradients + optimizer state + the activations kept for "
            "the backward pass):"] + ["  " + line for line in table[:2] + table[2:-1]]


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
