"""Architecture diagrams: ir.Graph -> Graphviz DOT text. Pure; graphcli.py runs `dot` and writes files.

Every layer is a box labelled with its name, kind, key options, output shape and parameters; the
network input is a node of its own. Hierarchical names make nested clusters (``layer1`` holds
``layer1.0``, which holds ``layer1.0.downsample``), each labelled with its name and parameter
count. ``depth=N`` draws each block whose name has N parts as one box, so ResNet-152 at depth 1
is the stem, ``layer1`` to ``layer4`` and the head.

The branches of a concat read left to right in written order, whatever they are (single boxes,
clusters, collapsed blocks): invisible ordering statements see to it (``_branch_order``).

All user text goes into HTML-like labels, escaped by ``_html``; node and cluster ids are made up
here (``n3``, ``b0``, ``a0_1``, ``cluster_2``), so no name can break the DOT syntax. The text
depends only on the graph: the same spec gives the same DOT.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from cnndsl.lang.show import fmt_shape
from cnndsl.layers import AddBranches, ConcatChannels, MulBranches
from cnndsl.model.counts import totals
from cnndsl.model.ir import TRAINABLE, Graph

# Fill colour by the layer kind's category (Layer.category); others get DEFAULT_FILL.
CATEGORY_FILL = {
    "conv": "#cfe2f3", "filter": "#d0e0e3", "pool": "#d9ead3", "dense": "#fce5cd", "norm": "#eeeeee",
    "merge": "#fff2cc", "reshape": "#f4f4f4", "regularization": "#f4f4f4", "output": "#f4cccc",
}
DEFAULT_FILL = "#ffffff"  # activations
BLOCK_FILL = "#e6e0f8"  # a collapsed block
INPUT_FILL = "#d0d0d0"
OUTPUT_FILL = "#f4cccc"
CLUSTER_FILLS = ("#f6f8fb", "#eef2f7", "#e4eaf2", "#dbe3ee")  # by nesting level, cycling
NAME_COLOR = "#666666"
CLUSTER_CHAR_WIDTH = 6.5  # points per character of a 10-point cluster label, bold, generously

MAX_BOXES = 60  # the default depth is the deepest that draws at most this many boxes
DIRECTIONS = ("TB", "LR")  # top to bottom, left to right

# remincross=false: dot's last pass over the whole graph ignores _branch_order's flat edges.
_HEADER = """\
  graph [rankdir={direction}, newrank=true, remincross=false, nodesep=0.25, ranksep=0.3, fontname="Helvetica",
         fontsize=12, labelloc=t, labeljust=l, pad=0.2];
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.12,0.04",
        color="#555555", penwidth=0.8];
  edge [color="#555555", arrowsize=0.6, penwidth=0.8];"""


@dataclass
class Unit:
    """One drawn box: a single layer, or (``collapsed``) every layer of one block."""

    key: str  # the DOT node id
    name: str
    collapsed: bool
    nodes: list[int] = field(default_factory=list)  # indices into graph.nodes, in order
    last: str = ""  # the last block's name, where consecutive calls of one block make one box
    repeat: int = 1  # how many calls of the block the box holds


@dataclass
class Scope:
    """A cluster: the block named ``name``, holding units and nested scopes in order of appearance."""

    name: str
    items: list[Unit | Scope] = field(default_factory=list)
    children: dict[str, Scope] = field(default_factory=dict)
    params: int = 0


def fitting_depth(graph: Graph, boxes: int = MAX_BOXES) -> int | None:
    """The deepest level of names that draws at most ``boxes`` boxes; None when every layer fits. (Boxes are
    counted before consecutive calls of one block merge, so the drawing has at most that many.)"""
    names = [n.name for n in graph.nodes]
    deepest = max((n.count(".") + 1 for n in names), default=1)
    for depth in range(deepest, 0, -1):
        if len({".".join(n.split(".")[:depth]) for n in names}) <= boxes:
            return None if depth == deepest else depth
    return 1


def to_dot(graph: Graph, depth: int | None = None, direction: str = "TB") -> str:
    """The DOT text of ``graph``; ``depth`` (1 or more) collapses the blocks below that name depth, and
    consecutive collapsed calls of one block with the same arguments make one box (``bottleneck(256) × 35``);
    ``direction`` TB draws top to bottom, LR left to right."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be 1 or more, not {depth}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction}")
    units, unit_of = _merge_repeats(graph, *_units(graph, depth))
    root = _scopes(graph, units)
    inside, order_edges = _branch_order(graph, unit_of)
    ident = graph.name if _IDENT.fullmatch(graph.name) else "network"  # SVG viewers show it as the title
    lines = [f'digraph "{ident}" {{', _HEADER.replace("{direction}", direction), f"  label={_title(graph)};"]
    shape = _html(fmt_shape(graph.input_shape))
    lines.append(f'  input [label=<<B>input</B><BR/>{shape}>, shape=ellipse, fillcolor="{INPUT_FILL}"];')
    lines += _emit_scope(graph, root, 0, itertools.count(), inside)
    edges = _edges(graph, unit_of)
    skips, loose = _skips(graph, unit_of, edges)
    for a, b in edges:
        style = ' [color="#2b6cb0", penwidth=1.2, constraint=false]' if (a, b) in skips else (
            " [constraint=false]" if (a, b) in loose else "")
        lines.append(f"  {a} -> {b}{style};")
    lines += [f"  {{rank=same; {a}; {b}}}" for a, b in skips]
    lines += _output_lines(graph, unit_of)
    lines += order_edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def _skips(graph: Graph, unit_of: list[Unit], edges: list[tuple[str, str]]) -> tuple[set, set]:
    """The skips across scales (an edge from a tensor a `from` named to a later box), drawn across
    at the level of their source, and the edges that then point up (into a box a skip lifted),
    which do not rank the boxes: so an encoder-decoder is drawn as a U, the decoder rising beside
    the encoder, each skip crossing from one to the other (U-Net's Fig. 1)."""
    skips: dict[tuple[str, str], None] = {}
    plain = set()  # box pairs that an ordinary edge joins too (a skip inside what one box shows)
    for i, node in enumerate(graph.nodes):
        for j in node.inputs:
            pair = ("input" if j < 0 else unit_of[j].key, unit_of[i].key)
            if j >= 0 and j in graph.refs and j != i - 1:
                skips.setdefault(pair, None)
            else:
                plain.add(pair)
    skips = {pair: None for pair in skips if pair not in plain and pair[0] != pair[1]}
    if not skips:
        return set(), set()
    lifted = {b: a for a, b in skips}
    rank: dict[str, int] = {"input": 0}
    into: dict[str, list[str]] = {}
    for a, b in edges:
        into.setdefault(b, []).append(a)
    loose = set()
    for unit in dict.fromkeys(u.key for u in unit_of):
        preds = [a for a in into.get(unit, []) if a in rank]
        if unit in lifted and lifted[unit] in rank:
            rank[unit] = rank[lifted[unit]]
            loose |= {(a, unit) for a in preds if a != lifted[unit] and rank[a] >= rank[unit]}
        else:
            rank[unit] = max((rank[a] + 1 for a in preds), default=0)
    return set(skips), loose


def _output_lines(graph: Graph, unit_of: list[Unit]) -> list[str]:
    """Where the network has several outputs: an oval for each, named, under the box that makes it."""
    outs = graph.output_list()
    if len(outs) < 2:
        return []
    lines = []
    for k, out in enumerate(outs):
        tail = "input" if out.index < 0 else unit_of[out.index].key
        note = "<BR/>training only" if out.train else ""
        shape = _html(fmt_shape(graph.shape_of(out.index)))
        dashed = ', style="filled,dashed"' if out.train else ""
        lines.append(f'  out{k} [label=<<B>{_html(out.name)}</B><BR/>{shape}{note}>, shape=ellipse, '
                     f'fillcolor="{OUTPUT_FILL}"{dashed}];')
        lines.append(f"  {tail} -> out{k};")
    return lines


def _units(graph: Graph, depth: int | None) -> tuple[list[Unit], list[Unit]]:
    """The boxes to draw, and for each graph node the box that shows it."""
    units: list[Unit] = []
    blocks: dict[str, Unit] = {}
    unit_of: list[Unit] = []
    for i, node in enumerate(graph.nodes):
        parts = node.name.split(".")
        if depth is not None and len(parts) > depth:
            name = ".".join(parts[:depth])
            unit = blocks.get(name)
            if unit is None:
                unit = blocks[name] = Unit(f"b{len(blocks)}", name, collapsed=True)
                units.append(unit)
        else:
            unit = Unit(f"n{i}", node.name, collapsed=False)
            units.append(unit)
        unit.nodes.append(i)
        unit_of.append(unit)
    return units, unit_of


def _merge_repeats(graph: Graph, units: list[Unit], unit_of: list[Unit]) -> tuple[list[Unit], list[Unit]]:
    """Consecutive collapsed boxes of one enclosing block that are calls of one block with the same arguments
    (a stage's repeated bottlenecks) become one box; the first keeps its key and name."""
    merged: list[Unit] = []
    for unit in units:
        last = merged[-1] if merged else None
        call = graph.calls.get(unit.name)
        if (last is not None and unit.collapsed and last.collapsed and call is not None
                and graph.calls.get(last.name) == call
                and unit.name.rsplit(".", 1)[0] == last.name.rsplit(".", 1)[0] and "." in unit.name):
            last.nodes.extend(unit.nodes)
            last.last, last.repeat = unit.name, last.repeat + 1
            continue
        merged.append(unit)
    owner = {i: unit for unit in merged for i in unit.nodes}
    return merged, [owner[i] for i in range(len(unit_of))]


def _scopes(graph: Graph, units: list[Unit]) -> Scope:
    """The cluster tree: each unit goes into the scopes named by the prefixes of its name, less those that
    only number a run of layers (a prefix ending in a position, not a label, and not a block call)."""
    root = Scope("")
    for unit in units:
        params = sum(graph.nodes[i].count(TRAINABLE) for i in unit.nodes)
        scope = root
        parts = unit.name.split(".")
        for k in range(1, len(parts)):
            name = ".".join(parts[:k])
            if parts[k - 1].isdigit() and name not in graph.calls:
                continue  # an unlabelled group: no cluster of its own
            child = scope.children.get(name)
            if child is None:
                child = scope.children[name] = Scope(name)
                scope.items.append(child)
            child.params += params
            scope = child
        scope.items.append(unit)
    return root


def _emit_scope(graph: Graph, scope: Scope, level: int, ids: Iterator[int], inside: dict[str, list[str]]) -> list[str]:
    """The DOT lines of a scope's units and nested clusters in written order, then ``inside``'s."""
    pad = "  " * (level + 1)
    lines: list[str] = []
    for item in scope.items:
        if isinstance(item, Unit):
            lines.append(pad + _unit_line(graph, item))
            continue
        fill = CLUSTER_FILLS[level % len(CLUSTER_FILLS)]
        local = item.name[len(scope.name) + 1:] if scope.name else item.name
        lines.append(f"{pad}subgraph cluster_{next(ids)} {{")
        lines.append(f'{pad}  label={_cluster_label(local, item.params, graph.calls.get(item.name))}; '
                     f'tooltip={_quote(item.name)}; '
                     f'style="rounded,filled"; fillcolor="{fill}"; color="#9aa5b1"; fontsize=10;')
        lines += _emit_scope(graph, item, level + 1, ids, inside)
        lines.append(pad + "}")
    return lines + [pad + line for line in inside.get(scope.name, [])]


def _branch_order(graph: Graph, unit_of: list[Unit]) -> tuple[dict[str, list[str]], list[str]]:
    """Invisible statements that make dot draw each concat's branches left to right, as written:
    lines for clusters (by scope name), and edges for the top level.

    dot keeps the boxes of one cluster in the order of flat edges between them (a rank=same
    chain), but drops flat edges into nested clusters and places clusters by crossing
    minimisation alone. So where some branch is a cluster, a chained row of invisible anchors
    beside the fork points one edge at each branch the fork feeds (nested concats' included) in
    written order: any other order crosses those edges. The row goes in the fork's cluster,
    which dot lays out before the branches' one, or in the branches' cluster if that holds the
    fork. Without all this, dot 2.43 draws single boxes right to left, and a mix jumbled.
    """
    inside: dict[str, list[str]] = {}
    fed: dict[int, list[int]] = {}  # fork -> the first nodes of all the branches it feeds
    rows: dict[int, list[str]] = {}  # fork -> the scope of its anchor row, where some branch is a cluster
    for fork, heads in _concat_heads(graph):
        fed.setdefault(fork, []).extend(heads)
        tail = "input" if fork < 0 else unit_of[fork].key
        boxes = list({unit_of[h].key: unit_of[h] for h in heads if unit_of[h].key != tail}.values())
        if len(boxes) < 2:
            continue  # the branches, or the fork with them, are drawn as one box
        parents = [box.name.split(".")[:-1] for box in boxes]
        common = _common(parents)
        plain = [box.key for box, parent in zip(boxes, parents, strict=True) if len(parent) == len(common)]
        if len(plain) > 1:
            inside.setdefault(".".join(common), []).append(f"{{rank=same; {_chain(plain)}}}")
        if len(plain) < len(boxes):
            scope = [] if fork < 0 else unit_of[fork].name.split(".")[:-1]
            if scope[:len(common)] == common:
                scope = common
            rows[fork] = _common([rows.get(fork, scope), scope])
    edges: list[str] = []
    for n, (fork, scope) in enumerate(rows.items()):
        tail = "input" if fork < 0 else unit_of[fork].key
        boxes = sorted({unit_of[h].key: unit_of[h] for h in fed[fork] if unit_of[h].key != tail}.values(),
                       key=lambda box: box.nodes[0])
        anchors = [f"a{n}_{k}" for k in range(len(boxes))]
        inside.setdefault(".".join(scope), []).append(
            f'{{rank=same; node [shape=point, style=invis, width=0, height=0, label=""]; {tail}; '
            f"{_chain(anchors)}}}")
        edges += [f"  {anchor} -> {box.key} [style=invis];" for anchor, box in zip(anchors, boxes, strict=True)]
    return inside, edges


def _chain(keys: list[str]) -> str:
    """Invisible edges from each key to the next, one statement each: dot's parser rejects an
    edge chain (a -> b -> c ...) of a few thousand nodes."""
    return "".join(f"{a} -> {b} [style=invis]; " for a, b in itertools.pairwise(keys))


def _common(paths: list[list[str]]) -> list[str]:
    """The longest common prefix of scope paths."""
    common = 0
    while all(len(p) > common and p[common] == paths[0][common] for p in paths):
        common += 1
    return paths[0][:common]


def _concat_heads(graph: Graph) -> Iterator[tuple[int, list[int]]]:
    """Each concat's fork (the node its branches read, -1 for the input) and the first node of each
    non-empty branch, in written order.

    A branch reads nothing older than the fork, and check.py appends the branches between the fork
    and the concat, so the fork is the last node that no later node up to the concat reads past.
    """
    for c, node in enumerate(graph.nodes):
        if not isinstance(node.layer, (ConcatChannels, AddBranches, MulBranches)):
            continue
        fork, low = c - 1, min(node.inputs)
        while low < fork:
            low = min(low, *graph.nodes[fork].inputs)
            fork -= 1
        if any(j in graph.refs and j != k - 1 for k in range(fork + 1, c + 1) for j in graph.nodes[k].inputs):
            continue  # a branch goes on from an earlier tensor (`from`): drawn as a skip instead
        yield fork, [_earliest(graph, end, fork) for end in node.inputs if end > fork]  # not the empty ones


def _earliest(graph: Graph, end: int, fork: int) -> int:
    """The earliest node after ``fork`` that ``end`` depends on: the first node of its branch."""
    seen, todo = {end}, [end]
    while todo:
        for j in graph.nodes[todo.pop()].inputs:
            if j > fork and j not in seen:
                seen.add(j)
                todo.append(j)
    return min(seen)


def _cluster_label(name: str, params: int, call: str | None = None) -> str:
    """The name (relative to the enclosing cluster's), the block call that made it, and the parameter count,
    at the top left.

    An empty cell as wide as the text follows it, so the cluster is at least twice as wide as the
    text and an edge coming down the middle into the cluster misses the text.
    """
    count = f"{params:,} params"
    head = f"{name}: {call}" if call else name
    width = round(CLUSTER_CHAR_WIDTH * max(len(head), len(count))) + 4
    text = (f'<B>{_html(name)}</B>' + (f": {_html(call)}" if call else "") +
            f'<BR ALIGN="LEFT"/>{count}<BR ALIGN="LEFT"/>')
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
            f'<TD ALIGN="LEFT" BALIGN="LEFT">{text}</TD><TD WIDTH="{width}"></TD></TR></TABLE>>')


def _unit_line(graph: Graph, unit: Unit) -> str:
    """One node statement: a layer box, or a collapsed block's box."""
    last = graph.nodes[unit.nodes[-1]]
    params = sum(graph.nodes[i].count(TRAINABLE) for i in unit.nodes)
    macs = sum(graph.nodes[i].macs for i in unit.nodes)
    shape = _html(fmt_shape(last.out_shape))
    tooltip = _quote(unit.name if not unit.last else f"{unit.name} to {unit.last}")
    if unit.collapsed:
        count = len(unit.nodes)
        call = graph.calls.get(unit.name)
        name = unit.name if not unit.last else f"{unit.name} .. {unit.last.rsplit('.', 1)[-1]}"
        what = (f"{call} \u00d7 {unit.repeat}" if unit.repeat > 1 else call) if call else None
        sizes = f"{count} layer{'s' if count != 1 else ''}, {params:,} params"
        sizes += f", {_short(macs)} MACs" if macs else ""
        rows = [f"<B>{_html(name)}</B>"] + ([_html(what)] if what else []) + [sizes, shape]
        return (f'{unit.key} [label=<{"<BR/>".join(rows)}>, tooltip={tooltip}, fillcolor="{BLOCK_FILL}", '
                'style="rounded,filled,bold"];')
    local = unit.name.rsplit(".", 1)[-1]
    options = last.layer.describe()
    kind = f"<B>{_html(last.kind)}</B>" + (f" {_html(options)}" if options else "")
    rows = [kind, shape + (f", {params:,} params" if params else "") + (f", {_short(macs)} MACs" if macs else "")]
    if local != last.kind:  # a name that only repeats the kind (`add`, `concat`) is left out
        rows.insert(0, f'<FONT POINT-SIZE="8" COLOR="{NAME_COLOR}">{_html(local)}</FONT>')
    fill = CATEGORY_FILL.get(last.layer.category, DEFAULT_FILL)
    return f'{unit.key} [label=<{"<BR/>".join(rows)}>, tooltip={tooltip}, fillcolor="{fill}"];'


def _edges(graph: Graph, unit_of: list[Unit]) -> list[tuple[str, str]]:
    """Edges between boxes in node order, each once; edges inside a collapsed block vanish."""
    seen: dict[tuple[str, str], None] = {}
    for i, node in enumerate(graph.nodes):
        head = unit_of[i].key
        for j in node.inputs:
            tail = "input" if j < 0 else unit_of[j].key
            if tail != head:
                seen.setdefault((tail, head), None)
    return list(seen)


def _title(graph: Graph) -> str:
    """The graph's label: name, title, and whole-network totals (MACs as inference runs it)."""
    t = totals(graph)
    macs = f"{t.macs:,} MACs" + (f" ({t.training_macs:,} in training)" if t.training_macs != t.macs else "")
    head = f"<B>{_html(graph.name)}</B>" + (f": {_html(graph.title)}" if graph.title else "")
    return f'<{head}<BR ALIGN="LEFT"/>{t.params:,} params, {macs}, {len(graph.nodes)} layers<BR ALIGN="LEFT"/> >'


def _short(n: int) -> str:
    """A count in three significant figures: 118M, 1.16G, 9.41K."""
    for size, unit in ((10 ** 12, "T"), (10 ** 9, "G"), (10 ** 6, "M"), (10 ** 3, "K")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _html(text: str) -> str:
    """Text for an HTML-like label: markup characters as entities, control characters as spaces."""
    out = []
    for ch in text:
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Graphviz expands escapes (\G the graph's name, \N, \L, \\ a backslash) in HTML-like text
# after decoding entities, so a backslash goes in doubled.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\\": "&#92;&#92;"}


def _quote(text: str) -> str:
    """A DOT double-quoted string (tooltips: names, which hold no backslash); backslashes doubled."""
    clean = "".join(" " if ch < " " or ch == "\x7f" else ch for ch in text)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'
