"""`cnndsl params`, `summary` and `weights`: counts, the per-layer table and the weight names, from the checked spec."""

from __future__ import annotations

import json
import sys

import click

from cnndsl import api
from cnndsl.cli.group import edge, load, load_all, main, spec_command, spec_options


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option("--all-variants", is_flag=True, help="Each spec's variants too (a family's members side by side).")
@spec_options
@edge
def params(specs, as_json: bool, all_variants: bool) -> None:
    """Count parameters and MACs; several specs give a comparison table.

    Example: cnndsl params specs/mlp_mnist.cnn specs/lenet5.cnn
    """
    loaded, failed = load_all(specs, all_variants)
    if as_json:
        click.echo(json.dumps([api.as_json(p, n.graph) for p, n in loaded], indent=2))
    elif len(loaded) == 1:
        click.echo(api.one_line(loaded[0][0], loaded[0][1].graph))
    elif loaded:
        click.echo(api.compare([(p, n.graph) for p, n in loaded]))
    sys.exit(1 if failed else 0)


@spec_command(json_help="Print the layers and totals as JSON.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Fold every block deeper than N name parts into one subtotal row (1: stem, stages, head).")
@click.option("--batch", "batches", type=click.IntRange(min=1), multiple=True, metavar="N",
              help="Batch sizes of the training-memory table (repeatable; default 1, 32 and 256).")
def summary(spec: str, as_json: bool, depth: int | None, batches: tuple[int, ...]) -> None:
    """Per-layer table: name, kind, options, output shape, parameters and their share, MACs, where a join's
    inputs come from; the totals; the memory to train it at a few batch sizes.

    \b
    Example: cnndsl summary specs/lenet5.cnn
             cnndsl summary specs/resnet50.cnn --depth 2 --batch 64
    """
    net = load(spec)
    if as_json:
        click.echo(json.dumps({**api.as_json(spec, net.graph), "layers": api.layers_json(net.graph)}, indent=2))
    else:
        click.echo(net.summary(depth, batches or api.TRAINING_BATCHES))


@spec_command(json_help="Print a JSON list of {name, shape, role}.")
def weights(spec: str, as_json: bool) -> None:
    """List the weight names and shapes a spec expects in a weights file.

    Example: cnndsl weights specs/resnet18.cnn
    """
    graph = load(spec).graph
    if as_json:
        click.echo(json.dumps(api.weights_json(graph), indent=2))
        return
    for line in api.weight_lines(graph):
        click.echo(line)
