"""The checked network: values, nodes and the graph. Data only; check.py builds it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.nodes[-1].out_shape if self.nodes else self.input_shape

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
