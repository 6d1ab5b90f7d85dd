"""The checked network: values, nodes and the graph. Data only; check.py builds it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from cnndsl.lang.source import Span

TRAINABLE, BUFFER, CONSTANT = "trainable", "buffer", "constant"


@dataclass(frozen=True)
class Param:
    """One weight tensor of a node: ``name`` is the full initializer name (``layer1.0.conv1.weight``).

    ``init`` says how to fill it: ``he``, ``glorot``, ``zeros``, ``ones``, ``fill`` (every value is
    the number ``value``: a layer scale's small start), or ``value`` (then ``value`` holds the data,
    for constant kernels).
    """

    name: str
    shape: tuple[int, ...]
    role: str  # TRAINABLE, BUFFER or CONSTANT
    init: str
    fan_in: int = 1
    fan_out: int = 1
    value: Any = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class Node:
    """One layer instance. ``inputs`` are indices of earlier nodes (-1 is the network input)."""

    name: str
    kind: str
    layer: Any  # a registered layer dataclass
    inputs: tuple[int, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    params: tuple[Param, ...]
    macs: int
    span: Span | None
    trace: tuple[Span, ...] = ()  # call sites of the blocks this node was expanded from
    hidden: bool = False  # not listed as a row of its own (e.g. the add of a residual)

    def count(self, role: str) -> int:
        return sum(p.size for p in self.params if p.role == role)

    @property
    def out_elements(self) -> int:
        return math.prod(self.out_shape)


@dataclass(frozen=True)
class GraphOutput:
    """One output of the network: ``name`` in the ONNX graph ("output" for the main one, else its
    label's full name), the index of the node that makes it (-1: the input itself), whether only
    training uses it (an auxiliary head), and the statement that declared it."""

    name: str
    index: int
    train: bool = False
    span: Span | None = None


MAIN_OUTPUT = "output"


@dataclass
class Graph:
    """The whole checked network, nodes in topological (written) order."""

    name: str
    title: str | None
    input_shape: tuple[int, ...]
    nodes: list[Node] = field(default_factory=list)
    source_text: str = ""
    path: str = "<string>"
    year: int | None = None  # from `network ... year=1998 top5=...`, for the lineage table
    top5: float | None = None
    warnings: list = field(default_factory=list)  # errors.CheckWarning: checks, but probably not meant
    outputs: list[GraphOutput] = field(default_factory=list)  # the main output first; empty: the last node
    refs: dict[int, str] = field(default_factory=dict)  # node index -> the name a `from` or to= used for it
    calls: dict[str, str] = field(default_factory=dict)  # a block call's scope name -> "bottleneck(64, 2)"

    def source_of(self, index: int) -> str | None:
        """Where node ``index`` reads from across the network (a skip), as written: the name of a
        tensor a `from` named, when it is not simply the node before; None otherwise."""
        for j in self.nodes[index].inputs:
            if j in self.refs and j != index - 1:
                return self.refs[j]
        return None

    def output_list(self, inference: bool = False) -> list[GraphOutput]:
        """Every output, the main one first; with ``inference``, without those only training uses."""
        outs = self.outputs or [GraphOutput(MAIN_OUTPUT, len(self.nodes) - 1)]
        return [o for o in outs if not (inference and o.train)]

    def shape_of(self, index: int) -> tuple[int, ...]:
        return self.input_shape if index < 0 else self.nodes[index].out_shape

    @property
    def output(self) -> Node:
        return self.nodes[self.output_list()[0].index]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape_of(self.output_list()[0].index) if self.nodes else self.input_shape

    def live(self, inference: bool = False) -> set[int]:
        """Indices of the nodes some output needs (with ``inference``, some output but a training one)."""
        live: set[int] = set()
        todo = [o.index for o in self.output_list(inference) if o.index >= 0]
        while todo:
            i = todo.pop()
            if i not in live:
                live.add(i)
                todo.extend(j for j in self.nodes[i].inputs if j >= 0)
        return live

    def pruned(self, inference: bool = False) -> Graph:
        """The graph with only the nodes its outputs need (and, with ``inference``, without the
        outputs only training uses): what is compiled. Itself when nothing is left out."""
        live = self.live(inference)
        outs = self.output_list(inference)
        if len(live) == len(self.nodes) and len(outs) == len(self.output_list()):
            return self
        index = {-1: -1}
        nodes = []
        for i, node in enumerate(self.nodes):
            if i in live:
                index[i] = len(nodes)
                nodes.append(replace(node, inputs=tuple(index[j] for j in node.inputs)))
        return replace(self, nodes=nodes, outputs=[replace(o, index=index[o.index]) for o in outs])

    def params(self):
        for node in self.nodes:
            yield from node.params

    def consumers(self) -> dict[int, list[int]]:
        """Node index -> indices of the nodes that read its output."""
        out: dict[int, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for j in node.inputs:
                out.setdefault(j, []).append(i)
        return out
