"""`cnndsl import`: an ONNX model read back as a spec, with its weights by name."""

from __future__ import annotations

import click

from cnndsl import api
from cnndsl.cli.group import edge, main
from cnndsl.views.term import echo_err


@main.command(name="import")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the spec here (default: print it).")
@click.option("--weights-out", type=click.Path(dir_okay=False),
              help="Write the model's weights here, as safetensors, named as the spec names them.")
@click.option("--name", help="The network's name (default: the model file's name).")
@click.option("--partial", is_flag=True,
              help="Where the language cannot express a node, import the part before it (marked PARTIAL in the "
                   "spec) instead of failing.")
@edge
def import_cmd(model: str, output: str | None, weights_out: str | None, name: str | None, partial: bool) -> None:
    """Read an ONNX model back as a spec: its layers, branches and residual adds, labelled from its
    weight names, with its weights to load by name.

    \b
    Example: cnndsl import resnet18.onnx -o resnet18.cnn --weights-out resnet18.safetensors
             cnndsl compile resnet18.cnn --weights resnet18.safetensors    (the same network)
    """
    imported = api.import_onnx(model, name, output, weights_out, partial)
    if output is None:
        click.echo(imported.spec, nl=False)
    lines = sum(1 for line in imported.spec.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    echo_err(f"imported {model}: {imported.source.node_count:,} nodes -> a {lines:,}-line spec, "
             f"{imported.params:,} parameters, {len(imported.weights):,} weight tensors"
             + (f" -> {output}" if output else "") + (f", weights -> {weights_out}" if weights_out else ""))
    for note in imported.notes:
        echo_err(f"note: {note}")
    if imported.source.partial:
        echo_err(f"warning: PARTIAL import: {imported.source.partial}")
