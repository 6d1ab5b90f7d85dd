"""Stopping by a signal: Ctrl-C, SIGTERM and SIGHUP become a one-line message and 128 + the signal's
number. Kept free of heavy imports, so that the console script (cli.entry) can install its handlers
before it imports click, NumPy or the rest of cnndsl: a signal during those imports is a stop too."""

from __future__ import annotations

import os
import signal
import sys
import threading
from importlib.machinery import PathFinder


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


DEFERRED = {"depth": 0, "pending": None}  # a native import in progress on the main thread; a signal it held


def _terminate(signum, frame) -> None:
    RECEIVED["signum"] = signum
    if DEFERRED["depth"]:
        DEFERRED["pending"] = DEFERRED["pending"] or signum
        return
    raise Terminated(signum)


def _interrupt(signum, frame) -> None:
    RECEIVED["signum"] = signum
    if DEFERRED["depth"]:
        DEFERRED["pending"] = DEFERRED["pending"] or signum
        return
    raise KeyboardInterrupt


# Native packages whose initialisation must not be cut by an exception from a signal handler: an
# interrupt raised while onnx's protobuf extension initialises crashed the process (SIGSEGV; a
# sweep of Ctrl-C at 0.3 to 0.5 s into `compile --quantize int8` found it). While one of them is
# imported on the main thread, a stopping signal is held, and raised once the import is done.
NATIVE = frozenset({"onnx", "onnxruntime", "numpy", "google", "PIL", "safetensors", "ml_dtypes"})


class _HoldSignals:
    """Runs a loader's create_module and exec_module with stopping signals held (see NATIVE)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def _held(self, fn, *args):
        if threading.current_thread() is not threading.main_thread():
            return fn(*args)  # handlers run on the main thread only: nothing to hold here
        DEFERRED["depth"] += 1
        try:
            return fn(*args)
        finally:
            DEFERRED["depth"] -= 1
            if not DEFERRED["depth"] and DEFERRED["pending"] is not None:
                signum, DEFERRED["pending"] = DEFERRED["pending"], None
                raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    def create_module(self, spec):
        return self._held(self.loader.create_module, spec)

    def exec_module(self, module):
        return self._held(self.loader.exec_module, module)


class HoldDuringNativeImports:
    """A meta path finder that finds nothing itself: it wraps the loader of each module of NATIVE's
    packages. (Not an importlib.abc.MetaPathFinder: importing importlib.abc costs every command 2 ms.)"""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in NATIVE:
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HoldSignals(spec.loader)
        return spec


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
