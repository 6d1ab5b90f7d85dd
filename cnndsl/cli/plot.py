"""`cnndsl plot`: charts of parameters and MACs, across specs by year or layer by layer in one."""

from __future__ import annotations

import click

from cnndsl.cli.group import edge, load_all, main, spec_options
from cnndsl.errors import CnnDslError


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Chart file; the format follows the extension: .png, .svg or .pdf.")
@click.option("--per-layer", is_flag=True, help="Parameters per layer, one panel per spec (default for one spec).")
@click.option("--size", metavar="WxH", help="Image size in pixels, e.g. 1400x800 (default: fits the rows).")
@spec_options
@edge
def plot(specs, output: str, per_layer: bool, size: str | None) -> None:
    """Chart parameters and MACs by year (several specs), or parameters per layer (one spec).

    \b
    Example: cnndsl plot specs/*.cnn -o lineage.png
             cnndsl plot specs/alexnet.cnn -o alexnet_layers.svg
    """
    from cnndsl.views.plot import check_output, plot_command

    check_output(output)
    loaded, failed = load_all(specs)
    if failed:
        what = "the spec has errors" if len(specs) == 1 else f"{failed} of {len(specs)} specs have errors"
        raise CnnDslError(f"nothing written: {what}", path=output)
    click.echo(plot_command([net.graph for _, net in loaded], output, per_layer, size))
