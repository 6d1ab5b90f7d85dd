"""The command line: one module per command (click options, one API call, printing); group.py holds
the group (`main`), which imports a command's module when the command is used, and what the commands share.
This module imports nothing heavy: the console script installs its signal handlers first."""

import signal
import sys

from cnndsl.cli.stop import (
    ONCE,
    RECEIVED,
    HoldDuringNativeImports,
    Stopping,
    Terminated,
    _interrupt,
    _terminate,
    stopped,
)

__all__ = ["entry", "main"]

_LATE = ("SIGINT", "SIGTERM", "SIGHUP")


def __getattr__(name: str):
    if name == "main":  # the click group, imported on first use
        from cnndsl.cli.group import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _quiet_unraisable(hook):
    """Python's hook for errors it cannot raise, less the interrupts: a signal whose handler ran in
    an import lock's weakref callback (or another finaliser) is swallowed there ("Exception ignored
    in: ...cb", and a traceback on stderr). It is sent again, to stop the command at the next
    point where an exception can be raised (tools/hostile.py saw `run` go on after Ctrl-C)."""

    def quiet(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = RECEIVED["signum"]
            if signum is not None:  # from another thread, a moment later: not inside this hook
                import os
                import threading

                threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
            return
        hook(unraisable)

    return quiet


def entry() -> None:
    """The `cnndsl` console script. A command turns Ctrl-C, SIGTERM and SIGHUP into a message and an
    exit status itself (cli.group.edge); this covers what lies outside it: one arriving while Python
    imports click and cnndsl, or while click sets up or winds down, exits 130 (143, 129) quietly too,
    and once the command has finished, late ones are ignored, so that the exit status is the
    command's and no traceback follows its output. (A second signal is not ignored while the command
    stops: Python's import machinery can swallow the first one, and only the next then stops the
    command, as tools/hostile.py found.)"""
    ONCE["enabled"] = True
    sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)
    sys.meta_path.insert(0, HoldDuringNativeImports())
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, _interrupt)
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:  # not under nohup
            signal.signal(sig, _terminate)
    try:
        from cnndsl.cli.group import main

        main()
    except (Terminated, Stopping) as exc:
        stopped(exc.signum)
    except KeyboardInterrupt:
        stopped(signal.SIGINT)
    except Exception:  # a signal surfacing as another exception (see cli.group.edge)
        if RECEIVED["signum"] is None:
            raise
        stopped(RECEIVED["signum"])
    finally:
        for name in _LATE:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
