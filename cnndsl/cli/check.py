"""`cnndsl check --json`: every spec's result as data, for editors and CI."""

from __future__ import annotations

import json

import click

from cnndsl.errors import CnnDslError


def check_json(specs) -> int:
    """Print one JSON list with a result per spec; return the exit status (1 if any failed)."""
    from cnndsl.api import load

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
