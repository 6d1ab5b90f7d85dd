"""Choosing each weight's initialisation scheme from the graph around it (no numbers drawn here)."""

from __future__ import annotations

from dataclasses import replace

from cnndsl.layers.activation import RELU_LIKE
from cnndsl.model.ir import Graph


def choose_inits(graph: Graph) -> None:
    """He init for weights that feed a relu-like activation (maybe through batchnorm), Glorot otherwise."""
    consumers = graph.consumers()

    def feeds_relu(i: int) -> bool:
        while True:  # through any number of batchnorms (a loop: chains may be long)
            after = consumers.get(i, [])
            if len(after) != 1:
                return False
            i = after[0]
            if graph.nodes[i].kind != "batchnorm":
                return graph.nodes[i].kind in RELU_LIKE

    for i, node in enumerate(graph.nodes):
        if any(p.init == "auto" for p in node.params):
            init = "he" if feeds_relu(i) else "glorot"
            node.params = tuple(replace(p, init=init) if p.init == "auto" else p for p in node.params)
