"""Choosing each weight's initialisation scheme from the graph around it (no numbers drawn here)."""

from __future__ import annotations

from dataclasses import replace

from cnndsl.model.ir import Graph


def choose_inits(graph: Graph) -> None:
    """He init for weights that feed a relu-like activation (through any layers the init rule
    looks through, such as batchnorm), Glorot otherwise. Both facts are traits of the layer kinds."""
    consumers = graph.consumers()

    def feeds_relu(i: int) -> bool:
        while True:  # a loop, not recursion: chains may be long
            after = consumers.get(i, [])
            if len(after) != 1:
                return False
            i = after[0]
            layer = graph.nodes[i].layer
            if not layer.init_transparent:
                return layer.relu_like

    for i, node in enumerate(graph.nodes):
        if any(p.init == "auto" for p in node.params):
            init = "he" if feeds_relu(i) else "glorot"
            node.params = tuple(replace(p, init=init) if p.init == "auto" else p for p in node.params)
