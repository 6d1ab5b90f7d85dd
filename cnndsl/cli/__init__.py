"""The command line: one module per command (click options, one API call, printing); main.py holds
the group, which imports a command's module when the command is used, and what the commands share."""

from cnndsl.cli.main import main

__all__ = ["main"]
