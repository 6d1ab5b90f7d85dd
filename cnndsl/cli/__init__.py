"""The command line: one module per command; each parses options, makes one API call, prints."""

from cnndsl.cli.main import main

__all__ = ["main"]
