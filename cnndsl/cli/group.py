"""The command group and what its commands share: error rendering at the edge, the compile options,
loading several specs. Each command lives in its own module (COMMANDS), imported when it is used."""

from __future__ import annotations

import errno
import functools
import importlib
import os
import signal
import sys
import threading

import click

from cnndsl import api
from cnndsl.api import CompileOptions
from cnndsl.cli.stop import RECEIVED, Terminated, _terminate, stopped, stopping
from cnndsl.errors import CnnDslError
from cnndsl.views.term import Style, color_enabled

DEFAULTS = CompileOptions()  # the option defaults are the API's
# command -> the module of cnndsl.cli that defines it
COMMANDS = {"bench": "bench", "check": "check", "compile": "compile", "export": "export", "fmt": "fmt",
            "graph": "graph", "import": "importer", "params": "params", "plot": "plot", "run": "run",
            "serve": "serve", "summary": "params", "weights": "params"}


class Commands(click.Group):
    """The group, loading each command's module when the command is first asked for (so that
    `cnndsl params` imports no more than it needs); `cnndsl --help` loads them all."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            importlib.import_module(f"cnndsl.cli.{COMMANDS[name]}")  # registers it on main
        return super().get_command(ctx, name)

    # A signal while click works outside a command (cli.stop.Stopping): its own handler would say
    # "Aborted!" and exit 1, where every other stop exits 128 + the signal's number.
    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise stopping(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise stopping(exc) from None


def fail(exc: CnnDslError) -> None:
    """Render ``exc`` (an error or a warning) on stderr, in colour on a terminal."""
    on = color_enabled(sys.stderr)
    click.echo(exc.render(Style(on)), err=True, color=on)


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _quiet_stdout() -> None:
    """Point the standard output at /dev/null, so that exiting does not try to flush it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's runner)
        pass


def handle_signals() -> None:
    """SIGTERM and SIGHUP raise Terminated in the main thread, unless the caller ignores them (nohup)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _terminate)


def edge(fn):
    """Render cnndsl errors (no traceback unless --debug); exit 1; Ctrl-C exits 130 quietly, SIGTERM
    143 and SIGHUP 129, each after discarding what was being written."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            try:
                return fn(*args, **kwargs)
            finally:
                if sys.stdout is not None:  # None when the caller closed it (`>&-`)
                    sys.stdout.flush()  # here, so that a full disk or a closed pipe is reported, not at exit
        except BrokenPipeError:
            _quiet_stdout()  # `cnndsl summary x | head`: the reader has what it wanted
            sys.exit(1)
        except OSError as exc:
            if exc.errno not in _OUTPUT_ERRNOS:
                raise
            fail(CnnDslError(f"cannot write the output: {exc.strerror or exc}",
                             hint="the standard output is full or closed (a full disk, /dev/full)"))
            _quiet_stdout()
            sys.exit(1)
        except CnnDslError as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            fail(exc)
            sys.exit(1)
        except Terminated as exc:
            stopped(exc.signum)
        except KeyboardInterrupt:
            stopped(signal.SIGINT)
        except Exception:
            # A signal can surface as another exception: while a native module initialises
            # (onnxruntime's, say) as its ImportError ("initialization failed"); while a class is
            # created, as the RuntimeError that wraps an error in __set_name__. After a stopping
            # signal, whatever follows is the stop.
            if RECEIVED["signum"] is None:
                raise
            stopped(RECEIVED["signum"])

    return wrapper


COMPILE_OPTIONS = [  # shared by compile and export: what goes into the model
    click.option("--seed", default=DEFAULTS.seed, show_default=True, type=click.IntRange(min=0),
                 help="Seed for the weight initialisation."),
    click.option("--opset", type=int, default=DEFAULTS.opset,
                 help="ONNX opset (default 21; 19 to 23; 19 for onnx2torch and onnxruntime before 1.18)."),
    click.option("--weights", "weights_path", type=click.Path(dir_okay=False),
                 help="Load weights by name from .safetensors, .npz or .onnx."),
    click.option("--strict/--no-strict", default=DEFAULTS.strict, show_default=True,
                 help="Require every name to match (like load_state_dict(strict=True))."),
    click.option("--fold-bn", is_flag=True, help="Fold each batchnorm into the conv before it."),
    click.option("--dtype", type=click.Choice(["float32", "float16"]), default=DEFAULTS.dtype, show_default=True,
                 help="Weights and arithmetic; float16 keeps float32 inputs and outputs (for GPUs)."),
]


def compile_options(fn):
    """The COMPILE_OPTIONS, in order, on a command."""
    for option in reversed(COMPILE_OPTIONS):
        fn = option(fn)
    return fn


def _remember(ctx, param, value):
    ctx.meta[f"cnndsl.{param.name}"] = value
    return value


def spec_options(fn):
    """--variant and --set on a command that reads specs; ``load`` applies them."""
    fn = click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", expose_value=False,
                      callback=_remember, help="Set a network parameter (repeatable): --set width=1.2.")(fn)
    return click.option("--variant", metavar="NAME", expose_value=False, callback=_remember,
                        help="Use one of the spec's `variant` lines: --variant efficientnet_b3.")(fn)


def chosen() -> tuple[str | None, dict]:
    """The command's --variant and --set."""
    meta = click.get_current_context().meta
    return meta.get("cnndsl.variant"), api.parse_settings(meta.get("cnndsl.settings", ()))


def load(path):
    """Load a spec with the command's --variant and --set; print its warnings."""
    net = api.load(path, *chosen())
    for warning in net.graph.warnings:
        fail(warning)
    return net


def spec_command(json_help: str):
    """A command on one SPEC with a --json flag (``json_help``), its errors rendered at the edge."""

    def make(fn):
        fn = click.option("--json", "as_json", is_flag=True, help=json_help)(spec_options(edge(fn)))
        return main.command()(click.argument("spec", type=click.Path(dir_okay=False))(fn))

    return make


def load_all(specs, every_variant: bool = False):
    """Load each spec (and, with ``every_variant``, each of its variants after it); print errors as
    they come; return (loaded pairs, failures)."""
    loaded, failed = [], 0
    for path in specs:
        try:
            loaded.append((path, load(path)))
            if every_variant:
                settings = chosen()[1]
                loaded += [(path, api.load(path, name, settings)) for name in api.variants(path)]
        except CnnDslError as exc:
            fail(exc)
            failed += 1
    return loaded, failed


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="cnndsl")
def main(debug: bool) -> None:
    """cnndsl: check, count, compile and run convolutional network specs.

    \b
    Example:
      cnndsl params specs/mlp_mnist.cnn specs/lenet5.cnn
      cnndsl compile specs/lenet5.cnn -o lenet5.onnx && cnndsl run lenet5.onnx
    """
    handle_signals()
