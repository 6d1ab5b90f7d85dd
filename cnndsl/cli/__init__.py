"""The command line: one module per command (click options, one API call, printing); main.py holds
the group, which imports a command's module when the command is used, and what the commands share."""

import signal

from cnndsl.cli.main import ONCE, RECEIVED, Terminated, _interrupt, main, stopped

__all__ = ["entry", "main"]

_LATE = ("SIGINT", "SIGTERM", "SIGHUP")


def entry() -> None:
    """The `cnndsl` console script. A command turns Ctrl-C, SIGTERM and SIGHUP into a message and an
    exit status itself (cli.main.edge); this covers what lies outside it: one arriving while click
    sets up or winds down exits 130 quietly too, and once the command has finished, late ones are
    ignored, so that the exit status is the command's and no traceback follows its output. (A second
    signal is not ignored while the command stops: Python's import machinery can swallow the first
    one, and only the next then stops the command, as tools/hostile.py found.)"""
    ONCE["enabled"] = True
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, _interrupt)
    try:
        main()
    except Terminated as exc:
        stopped(exc.signum)
    except KeyboardInterrupt:
        stopped(signal.SIGINT)
    except ImportError:  # a signal during a native module's initialisation (see cli.main.edge)
        if RECEIVED["signum"] is None:
            raise
        stopped(RECEIVED["signum"])
    finally:
        for name in _LATE:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
