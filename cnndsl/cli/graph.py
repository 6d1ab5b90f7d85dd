"""`cnndsl graph`: the architecture as a diagram (DOT, or SVG, PNG and PDF through Graphviz)."""

from __future__ import annotations

import click

from cnndsl.cli.group import edge, load, main, spec_options


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output .svg, .png, .pdf or .dot (default: NAME.svg); - prints the DOT text.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Draw each block deeper than N name parts as one box (1: stem, stages, head).")
@spec_options
@edge
def graph(spec: str, output: str | None, depth: int | None) -> None:
    """Draw the architecture: layers as boxes, blocks as nested clusters, with shapes and parameters.

    .dot needs nothing installed; .svg, .png and .pdf run Graphviz's `dot`.

    \b
    Example: cnndsl graph specs/resnet18.cnn -o resnet18.svg
             cnndsl graph specs/resnet152.cnn --depth 1 -o resnet152.png
    """
    from cnndsl.views.diagram import output_format, write_diagram
    from cnndsl.views.graph import to_dot

    if output is not None and output != "-":
        output_format(output)  # an unknown extension fails before the spec is read
    net = load(spec)
    text = to_dot(net.graph, depth)
    if output == "-":
        click.echo(text, nl=False)
        return
    path = output or f"{net.name}.svg"
    for line in write_diagram(text, path):
        click.echo(f"note: Graphviz: {line}", err=True)
    click.echo(f"wrote {path} ({_layers(net.graph, depth)})")


def _layers(graph, depth: int | None) -> str:
    """'12 layers', and ', blocks below depth 1 collapsed' where some block was drawn as one box."""
    count = len(graph.nodes)
    what = f"{count} layer{'s' if count != 1 else ''}"
    collapsed = depth is not None and any(node.name.count(".") >= depth for node in graph.nodes)
    return f"{what}, blocks below depth {depth} collapsed" if collapsed else what
