"""`cnndsl check`: does each spec check? One line per spec, or every result as JSON (for editors and CI)."""

from __future__ import annotations

import json
import sys

import click

from cnndsl.cli.group import edge, load, load_all, main, spec_options
from cnndsl.errors import CnnDslError


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list: per spec, ok and its shapes, or the error with line and column.")
@spec_options
@edge
def check(specs, as_json: bool) -> None:
    """Check specs: one line per spec; exit 1 if any fails.

    Example: cnndsl check specs/*.cnn
    """
    if as_json:
        sys.exit(check_json(specs))
    loaded, failed = load_all(specs)
    for path, net in loaded:
        g = net.graph
        click.echo(f"{path}: ok: {g.name}, {len(g.nodes)} layer{'s' if len(g.nodes) != 1 else ''}, "
                   f"{'x'.join(map(str, g.input_shape))} -> {'x'.join(map(str, g.output_shape))}")
    sys.exit(1 if failed else 0)


def check_json(specs) -> int:
    """Print one JSON list with a result per spec; return the exit status (1 if any failed)."""
    results, failed = [], 0
    for path in specs:
        try:
            g = load(path).graph
        except CnnDslError as exc:
            failed += 1
            results.append({"path": path, "ok": False, "error": exc.to_dict()})
            continue
        results.append({"path": path, "ok": True, "name": g.name, "layers": len(g.nodes),
                        "input": list(g.input_shape), "output": list(g.output_shape)})
    click.echo(json.dumps(results, indent=2))
    return 1 if failed else 0
