"""Whole-network counts from a checked graph: parameters, buffers, constants, MACs, bytes, depth."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.model.ir import BUFFER, CONSTANT, TRAINABLE, Graph

FLOAT32 = 4


@dataclass(frozen=True)
class Totals:
    """Whole-network counts. ``params`` are trainable parameters (PyTorch's convention);
    buffers are batchnorm running statistics; constants are fixed kernels. MACs count conv
    and dense multiply-adds for one sample, as inference runs the network (without the outputs
    only training uses); FLOPs = 2 x MACs."""

    params: int
    trainable_params: int
    buffers: int
    constants: int
    macs: int
    flops: int
    weight_bytes: int
    activation_bytes: int
    layers: int
    depth: int  # weighted (conv and dense) layers on the longest input-to-output path
    training_macs: int = 0  # MACs with the outputs only training uses (`output train`); = macs without them


def totals(graph: Graph) -> Totals:
    trainable = sum(n.count(TRAINABLE) for n in graph.nodes)
    buffers = sum(n.count(BUFFER) for n in graph.nodes)
    constants = sum(n.count(CONSTANT) for n in graph.nodes)
    used, running = graph.live(), graph.live(inference=True)
    macs = sum(n.macs for i, n in enumerate(graph.nodes) if i in running)
    training_macs = sum(n.macs for i, n in enumerate(graph.nodes) if i in used)
    act = sum(n.out_elements for n in graph.nodes) * FLOAT32
    return Totals(trainable, trainable, buffers, constants, macs, 2 * macs,
                  (trainable + buffers + constants) * FLOAT32, act, len(graph.nodes), depth(graph), training_macs)


def depth(graph: Graph) -> int:
    """Weighted layers (those with MACs: conv and dense) on the longest path: ResNet-50 has 50."""
    longest: list[int] = []
    for node in graph.nodes:
        before = max((longest[i] for i in node.inputs if i >= 0), default=0)
        longest.append(before + (1 if node.macs else 0))
    return longest[-1] if longest else 0
