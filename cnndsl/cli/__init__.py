"""The command line: one module per command (click options, one API call, printing); main.py holds
the group and what the commands share. Importing this package registers every command."""

from cnndsl.cli import bench, check, compile, export, fmt, graph, params, plot, run  # noqa: F401 - the commands
from cnndsl.cli.main import main

__all__ = ["main"]
