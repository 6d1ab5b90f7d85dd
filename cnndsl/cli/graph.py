"""`cnndsl graph`: the architecture as a diagram (DOT, or SVG, PNG and PDF through Graphviz)."""

from __future__ import annotations

import click

from cnndsl.cli.group import edge, load, main, spec_options


class _Depth(click.ParamType):
    """--depth: a whole number from 1, or `all` (every layer)."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if value == "all" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or 'all'", param, ctx)
        if number < 1:
            self.fail(f"{number} is not 1 or more", param, ctx)
        return number


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output .svg, .png, .pdf or .dot (default: NAME.svg); - prints the DOT text.")
@click.option("--depth", type=_Depth(), default=None,
              help="Draw each block deeper than N name parts as one box (1: stem, stages, head); `all` draws every "
                   "layer. Default: the deepest level that fits a slide (at most 60 boxes).")
@click.option("--lr", "left_to_right", is_flag=True, help="Lay the network out left to right (for a wide slide).")
@spec_options
@edge
def graph(spec: str, output: str | None, depth, left_to_right: bool) -> None:
    """Draw the architecture: layers as boxes, blocks as nested clusters, with shapes, parameters and MACs.
    A folded block's box names its call (`bottleneck(256)`); consecutive calls with the same arguments
    make one box (`bottleneck(256) × 35`).

    .dot needs nothing installed; .svg, .png and .pdf run Graphviz's `dot`.

    \b
    Example: cnndsl graph specs/resnet18.cnn -o resnet18.svg
             cnndsl graph specs/resnet152.cnn --depth 1 -o resnet152.png
             cnndsl graph specs/vgg16.cnn --depth all --lr -o vgg16.pdf
    """
    from cnndsl.views.diagram import output_format, write_diagram
    from cnndsl.views.graph import fitting_depth, to_dot

    if output is not None and output != "-":
        output_format(output)  # an unknown extension fails before the spec is read
    net = load(spec)
    if depth is None:
        depth = fitting_depth(net.graph)
    elif depth == "all":
        depth = None
    text = to_dot(net.graph, depth, "LR" if left_to_right else "TB")
    if output == "-":
        click.echo(text, nl=False)
        return
    path = output or f"{net.name}.svg"
    for line in write_diagram(text, path):
        click.echo(f"note: Graphviz: {line}", err=True)
    click.echo(f"wrote {path} ({_layers(net.graph, depth)})")


def _layers(graph, depth: int | None) -> str:
    """'12 layers', and ', blocks below depth 1 collapsed; --depth all draws every layer' where a block was drawn
    as one box."""
    count = len(graph.nodes)
    what = f"{count} layer{'s' if count != 1 else ''}"
    collapsed = depth is not None and any(node.name.count(".") >= depth for node in graph.nodes)
    return f"{what}, blocks below depth {depth} collapsed; --depth all draws every layer" if collapsed else what
