"""A graph pass before lowering: fold each per-channel affine layer (batchnorm) into the layer before it.

y = (W x + b - center) * scale + shift == W' x + b', with W' = W * scale and
b' = (b - center) * scale + shift, per output channel. Which kinds fold, and which take a fold,
are traits of the layer classes (``folds_into_previous``, ``absorbs_affine``); the arithmetic of
the folded layer is its ``affine``. The folded values are made when a weight is written, so a
streamed compile holds one folded tensor at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from cnndsl.errors import CompileError
from cnndsl.model.ir import TRAINABLE, Graph, Node, Param

Fill = Callable[[Param], np.ndarray]


@dataclass
class Folded:
    """A graph after folding, and how to fill its weights: ``fill``/``parts`` as emit.build takes
    them, and ``notes`` (weight name -> how it was made, for error messages)."""

    graph: Graph
    fill: Fill
    parts: Callable[[Param], Iterator[np.ndarray] | None] | None
    notes: dict[str, str]


def pairs(graph: Graph) -> dict[int, int]:
    """Index of each layer that takes a fold -> index of the foldable layer that alone consumes it."""
    consumers = graph.consumers()
    outputs = {o.index for o in graph.output_list()}  # a layer that is an output is needed unfolded
    out = {}
    for i, node in enumerate(graph.nodes):
        after = consumers.get(i, [])
        if node.layer.absorbs_affine and len(after) == 1 and graph.nodes[after[0]].layer.folds_into_previous \
                and i not in outputs:
            out[i] = after[0]
    return out


def fold(graph: Graph, fill: Fill, parts=None) -> Folded:
    """The graph with every foldable pair merged into one node (named as the first), later nodes'
    inputs renumbered; the folded weights are computed from ``fill`` when asked for."""
    found = pairs(graph)
    dropped = set(found.values())
    made: dict[str, Callable[[], np.ndarray]] = {}
    notes: dict[str, str] = {}
    index: dict[int, int] = {-1: -1}  # old node index -> new (a dropped node maps to its producer's)
    nodes: list[Node] = []
    for i, node in enumerate(graph.nodes):
        if i in dropped:
            index[i] = index[node.inputs[0]]
            continue
        node = replace(node, inputs=tuple(index[j] for j in node.inputs))
        if i in found:
            affine = graph.nodes[found[i]]
            node = _merged(node, affine, fill, made)
            for p in node.params:
                notes[p.name] = f"after folding {affine.kind} '{affine.name}' into it"
        index[i] = len(nodes)
        nodes.append(node)
    folded = replace(graph, nodes=nodes, outputs=[replace(o, index=index[o.index]) for o in graph.output_list()])

    def fill_folded(p: Param) -> np.ndarray:
        return made[p.name]() if p.name in made else fill(p)

    def parts_folded(p: Param):
        return None if p.name in made else parts(p)

    return Folded(folded, fill_folded, parts and parts_folded, notes)


def _merged(node: Node, affine: Node, fill: Fill, made: dict) -> Node:
    """``node`` with a bias, its weight and bias made from the affine layer after it."""
    w = node.params[0]
    bias = Param(node.name + ".bias", (w.shape[0],), TRAINABLE, "zeros")
    old_bias = node.params[1] if len(node.params) > 1 else None

    def terms():
        return affine.layer.affine(*(np.asarray(fill(p), np.float64) for p in affine.params))

    def weight():
        scale, _, _ = terms()
        expand = (slice(None),) + (None,) * (len(w.shape) - 1)
        return (np.asarray(fill(w), np.float64) * scale[expand]).astype(np.float32)

    def shift():
        scale, center, offset = terms()
        b = np.asarray(fill(old_bias), np.float64) if old_bias is not None else 0.0
        return ((b - center) * scale + offset).astype(np.float32)

    made[w.name], made[bias.name] = weight, shift
    return replace(node, layer=node.layer.with_bias(), params=(w, bias))


def check_half_range(node: Node, fill: Fill) -> None:
    """A foldable affine layer (batchnorm) whose scale exceeds float16's range overflows every
    output of a float16 model: refuse it at compile time rather than let it run to NaN."""
    scale, _, _ = node.layer.affine(*(np.asarray(fill(p), np.float64) for p in node.params))
    scale = np.abs(scale)
    limit = float(np.finfo(np.float16).max)
    if np.any(scale > limit):
        raise CompileError(f"{node.kind} '{node.name}' scales by up to {float(scale.max()):.6g} "
                           f"(gamma / sqrt(running_var + eps)), beyond float16's range (+-{limit:g})",
                           node.span, "compile as float32, or check its running_var")
