"""The `cnndsl export --triton` command's work: compile into a Triton model repository, atomically.

Layout written: ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/VERSION/model.onnx``. A new model's
folder, or a new version's folder beside the others, is staged and published whole (cnndsl.io), so
a failure or an interrupt never leaves a half-written model or version folder behind.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

import click

from cnndsl.errors import CompileError, ExportError
from cnndsl.export.triton import ServeOptions, Tensor, check_model_name, config_text, triton_type
from cnndsl.io import StagingError, publish
from cnndsl.onnx.emit import INPUT, OUTPUT
from cnndsl.views.term import Progress

MODEL_FILE = "model.onnx"  # the file name Triton's onnxruntime backend looks for
CONFIG_FILE = "config.pbtxt"
INTERFACE_TYPE = "FLOAT"  # emit.build keeps a float32 input and output, float16 models included


@dataclass(frozen=True)
class CompileOptions:
    """The same weight and precision options as `cnndsl compile`."""

    seed: int = 0
    opset: int | None = None
    weights_path: str | None = None
    strict: bool = True
    fold_bn: bool = False
    dtype: str = "float32"


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the model folder, the version's files, and what became of the config."""

    model_dir: str
    version: int
    files: list[str]
    config: str  # "written", "replaced" or "unchanged"
    versions: list[int]


def export_triton(spec: str, repo: str, name: str | None = None, version: int = 1, force: bool = False,
                  build: CompileOptions | None = None, serve: ServeOptions | None = None) -> Exported:
    """Compile ``spec`` to ``REPO/NAME/VERSION/model.onnx`` and write ``REPO/NAME/config.pbtxt``.

    An existing version, or an existing config.pbtxt that differs from the one this export would
    write, is kept unless ``force``. Notes (weights matched loosely) are echoed to stderr.
    """
    from cnndsl.api import load
    from cnndsl.onnx.compile import check_fits

    build = build or CompileOptions()
    net = load(spec)
    name = check_model_name(name or net.name)
    graph = net.graph
    inputs = [Tensor(INPUT, triton_type(INTERFACE_TYPE), graph.input_shape)]
    outputs = [Tensor(OUTPUT, triton_type(INTERFACE_TYPE), graph.output_shape)]
    text = config_text(name, inputs, outputs, serve or ServeOptions())
    if version < 1:
        raise ExportError(f"--version {version}: Triton versions are 1 or more", hint="use --version 1")
    check_fits(graph, repo, build.dtype)  # refuse what cannot fit here before touching the repository
    weights = _load_weights(graph, build)
    repo_dir, made = _repo_dir(repo)
    model_dir = os.path.join(repo_dir, name)
    try:
        config = _check_target(model_dir, version, text, force)
        files = _write_model(graph, model_dir, version, text, config, build, weights)
    except BaseException:
        if made:
            _unmake(repo_dir, made)
        raise
    return Exported(model_dir, version, files, config, _versions(model_dir))


def _load_weights(graph, build: CompileOptions) -> dict | None:
    if not build.weights_path:
        return None
    from cnndsl.weights.files import read_weights
    from cnndsl.weights.seeded import match_weights

    weights, notes = match_weights(graph, read_weights(build.weights_path), build.weights_path, build.strict)
    for note in notes:
        click.echo(note, err=True)
    return weights


def _repo_dir(repo: str) -> tuple[str, str | None]:
    """The repository folder, made if missing; refuse a file or a folder we cannot write to.
    Returns the folder and the topmost folder this made (None if it existed)."""
    path = os.path.abspath(repo)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ExportError("not a folder: a Triton model repository is a folder of model folders", path=repo)
    top = path
    while not os.path.exists(os.path.dirname(top)) and os.path.dirname(top) != top:
        top = os.path.dirname(top)
    made = None if os.path.exists(path) else top
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot make the model repository: {exc.strerror}", path=repo) from None
    if _read_only(path):
        raise ExportError("cannot write to the model repository: it is on a read-only file system", path=repo,
                          hint="choose a folder on a writable disk")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ExportError("cannot write to the model repository: permission denied", path=repo,
                          hint="choose a folder you can write to, or fix its permissions")
    return path, made


def _read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _unmake(path: str, made: str) -> None:
    """Remove the empty folders this export made, from ``path`` up to ``made``; never a non-empty one."""
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == made:
            return
        path = os.path.dirname(path)


def _check_target(model_dir: str, version: int, text: str, force: bool) -> str:
    """Before compiling anything: refuse to clobber a version or a different config without force.
    Returns what will become of config.pbtxt: written, replaced or unchanged."""
    if not os.path.exists(model_dir):
        return "written"
    if not os.path.isdir(model_dir):
        raise ExportError("exists and is not a folder: Triton needs a model folder here", path=_shown(model_dir))
    version_dir = os.path.join(model_dir, str(version))
    if os.path.exists(version_dir) and not os.path.isdir(version_dir):
        raise ExportError("exists and is not a version folder", path=_shown(version_dir),
                          hint="move it away, or export as another --version")
    if os.path.exists(version_dir) and not force:
        raise ExportError(f"version {version} of this model exists", path=_shown(version_dir),
                          hint=f"export as a new version (--version {max(_versions(model_dir), default=0) + 1}), "
                               "or replace this one with --force")
    old = _read_text(os.path.join(model_dir, CONFIG_FILE))
    if old is None:
        return "written"
    if old == text:
        return "unchanged"
    if not force:
        raise ExportError("exists and differs from the config this export writes (hand edits, or other "
                          "--max-batch/--instances options); all versions of a model share it",
                          path=_shown(os.path.join(model_dir, CONFIG_FILE)),
                          hint="use the options it was exported with, or replace it with --force")
    return "replaced"


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""  # unreadable: differs from anything we write


def _versions(model_dir: str) -> list[int]:
    """The version folders Triton sees: numeric names without a leading zero."""
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and not n.startswith("0")
                  and os.path.isdir(os.path.join(model_dir, n)))


def _write_model(graph, model_dir: str, version: int, text: str, config: str, build: CompileOptions,
                 weights) -> list[str]:
    """Publish (cnndsl.io) a new model's whole folder at once; beside an existing model's other
    versions, its version folder, then its config if that changes. Returns the files written."""
    from cnndsl.onnx.compile import compile_to_file

    exists = os.path.isdir(model_dir)
    parent = model_dir if exists else os.path.dirname(model_dir)
    with publish(lambda exc: _write_error(exc, model_dir, parent)) as pub:
        if exists:
            staged = version_dir = pub.folder(os.path.join(model_dir, str(version)))
            config_path = None if config == "unchanged" else pub.file(os.path.join(model_dir, CONFIG_FILE))
        else:
            staged = pub.folder(model_dir)
            version_dir, config_path = os.path.join(staged, str(version)), os.path.join(staged, CONFIG_FILE)
            os.mkdir(version_dir)
        bar = Progress()
        try:
            written = compile_to_file(graph, os.path.join(version_dir, MODEL_FILE), seed=build.seed,
                                      opset=build.opset, weights=weights, fold_bn=build.fold_bn, dtype=build.dtype,
                                      progress=lambda done, total: bar.show(f"writing weights {done / total:4.0%}"))
        except CompileError as exc:
            if exc.path and exc.path.startswith(staged):  # name the model folder, not the staging path
                raise ExportError(f"cannot write the model: {exc.message.rsplit(': ', 1)[-1]}",
                                  path=_shown(model_dir)) from None
            raise
        finally:
            bar.done()
        if config_path:
            with open(config_path, "w", encoding="utf-8") as fh:
                fh.write(text)
    return [os.path.join(model_dir, str(version), os.path.basename(w)) for w in written] + [
        os.path.join(model_dir, CONFIG_FILE)]


def _write_error(exc: OSError, model_dir: str, parent: str) -> ExportError:
    if isinstance(exc, StagingError):
        return ExportError(f"cannot write here: {exc.strerror}", path=_shown(parent))
    return ExportError(f"cannot write the model: {exc.strerror}", path=_shown(model_dir))


def export_command(spec: str, repo: str, name: str | None, version: int, force: bool, build: CompileOptions,
                   serve: ServeOptions) -> None:
    """Export, then say what was written, how Triton will serve it, and what to watch for."""
    from cnndsl.export.triton import INSTANCE_KINDS
    from cnndsl.lang.show import human_bytes
    from cnndsl.onnx.emit import DEFAULT_OPSET, ir_version_for

    done = export_triton(spec, repo, name, version, force, build, serve)
    opset = build.opset or DEFAULT_OPSET
    size = sum(os.path.getsize(f) for f in done.files[:-1])
    half = ", float16 inside a float32 interface" if build.dtype == "float16" else ""
    click.echo(f"wrote {_shown(done.files[0])} ({human_bytes(size)}{half}, opset {opset}, IR {ir_version_for(opset)})")
    batching = f"max batch {serve.max_batch}" if serve.max_batch else "no batching"
    kinds = " + ".join(INSTANCE_KINDS[serve.instances])
    verb = {"written": "wrote", "replaced": "replaced", "unchanged": "kept"}[done.config]
    click.echo(f"{verb} {_shown(done.files[-1])} ({batching}, {serve.count} instance"
               f"{'s' if serve.count > 1 else ''} {kinds})")
    listed = ", ".join(map(str, done.versions))
    click.echo(f"serve it: tritonserver --model-repository={shlex.quote(os.path.dirname(done.model_dir))}  "
               f"(model '{os.path.basename(done.model_dir)}', version{'s' if len(done.versions) > 1 else ''} "
               f"{listed}; Triton serves the latest by default)")
    if serve.instances in ("gpu", "both"):
        click.echo("note: KIND_GPU instances: Triton fails to load this model on a machine without a GPU "
                   "(--instances auto uses the GPUs when there are any, else the CPU)", err=True)


def _shown(path: str) -> str:
    """A path relative to the working folder when it is below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
