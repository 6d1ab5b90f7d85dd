"""`python -m cnndsl` works like the `cnndsl` command."""

from cnndsl.cli.main import main

main(prog_name="cnndsl")
