"""`python -m cnndsl` works like the `cnndsl` command."""

from .cli import main

main(prog_name="cnndsl")
