"""Stopping by a signal: Ctrl-C, SIGTERM and SIGHUP become a one-line message and 128 + the signal's
number. Kept free of heavy imports, so that the console script (cli.entry) can install its handlers
before it imports click, NumPy or the rest of cnndsl: a signal during those imports is a stop too."""

from __future__ import annotations

import os
import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, docker stop, systemd) or SIGHUP (a closed terminal), handled as Ctrl-C is:
    whatever was being written is discarded, so nothing half-written stays."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Stopping(BaseException):
    """A stopping signal that came while click itself was working (parsing the arguments, importing
    a command's module), outside any command's edge: carried past click's own KeyboardInterrupt
    handler ("Aborted!", exit 1) to the console script, which exits as for any stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stopping(exc: KeyboardInterrupt) -> Stopping:
    """The Stopping for an interrupt raised where click would catch it."""
    return Stopping(getattr(exc, "signum", signal.SIGINT))


ONCE = {"enabled": False}  # set by the console script (cli.entry): a process of its own


RECEIVED: dict = {"signum": None}  # the stopping signal, once one has come


def _terminate(signum, frame) -> None:
    RECEIVED["signum"] = signum
    raise Terminated(signum)


def _interrupt(signum, frame) -> None:
    RECEIVED["signum"] = signum
    raise KeyboardInterrupt


def stopped(signum: int) -> None:
    """Exit as a stop by ``signum`` does: one line, 128 + the signal's number (130 for Ctrl-C). When
    native work was abandoned still running, the process ends at once, after its exit handlers:
    Python's own shutdown would wait for onnxruntime, which may never return."""
    message = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):  # stderr closed or full: the status says it
        pass
    api = sys.modules.get("cnndsl.api")  # not imported yet: no work can have been abandoned
    if api is not None and api.work_abandoned() and ONCE["enabled"]:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(128 + signum)
    sys.exit(128 + signum)
