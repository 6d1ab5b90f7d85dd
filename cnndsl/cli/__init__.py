"""The command line: one module per command (click options, one API call, printing); main.py holds
the group, which imports a command's module when the command is used, and what the commands share."""

import signal
import sys

from cnndsl.cli.main import ONCE, Terminated, _interrupt, main

__all__ = ["entry", "main"]

_LATE = ("SIGINT", "SIGTERM", "SIGHUP")


def entry() -> None:
    """The `cnndsl` console script. A command turns Ctrl-C, SIGTERM and SIGHUP into a message and an
    exit status itself (cli.main.edge); this covers what lies outside it: one arriving while click
    sets up or winds down exits 130 quietly too, and once the command has finished, late ones are
    ignored, so that the exit status is the command's and no traceback follows its output. The
    first signal is the one that counts: later ones are ignored while the command stops."""
    ONCE["enabled"] = True
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except Terminated as exc:
        print(f"terminated ({signal.Signals(exc.signum).name})", file=sys.stderr)
        sys.exit(128 + exc.signum)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        for name in _LATE:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
