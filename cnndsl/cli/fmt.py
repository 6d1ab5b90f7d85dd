"""`cnndsl fmt`: specs in the canonical layout, rewritten in place, printed, or checked (for CI)."""

from __future__ import annotations

import sys

import click

from cnndsl import api
from cnndsl.cli.group import edge, fail, main
from cnndsl.errors import CnnDslError
from cnndsl.views.term import echo_err


@main.command(name="fmt")
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; list the specs that would change and exit 1 (for CI).")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the formatted specs instead of rewriting them.")
@click.option("--align/--no-align", default=True, show_default=True,
              help="Keep the author's alignment (two or more spaces) in code, or collapse it.")
@edge
def fmt_cmd(specs, check: bool, to_stdout: bool, align: bool) -> None:
    """Rewrite specs in the canonical layout, in place; comments and alignment are kept.

    \b
    Example: cnndsl fmt specs/*.cnn
             cnndsl fmt --check specs/*.cnn     (CI: exit 1 listing specs that would change)
             cnndsl fmt - < messy.cnn           (stdin to stdout)
    """
    if check and to_stdout:
        raise click.UsageError("--check and --stdout cannot be used together: --check prints only the names "
                               "of the specs that would change; use one or the other")
    changed = failed = 0
    for path in specs:
        name = "<stdin>" if path == "-" else path
        try:
            text = api.read_spec(path)
            new = api.format_spec(text, name, align)
            if check:
                if new != text:
                    changed += 1
                    click.echo(name)
            elif to_stdout or path == "-":
                click.echo(new, nl=False)
            elif new != text:
                api.write_spec(path, new)
                echo_err(f"reformatted {path}")
        except CnnDslError as exc:
            fail(exc)
            failed += 1
    if check and changed:
        echo_err(f"{changed} of {len(specs)} spec{'s' if len(specs) != 1 else ''} would be reformatted; "
                 "run `cnndsl fmt` on them")
    sys.exit(1 if changed or failed else 0)
