"""Exporting to a Triton model repository: compile (Network.compile) into it, atomically.

Layout written: ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/VERSION/model.onnx``. A new model's
folder, or a new version's folder beside the others, is staged and published whole (cnndsl.io), so
a failure or an interrupt never leaves a half-written model or version folder behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cnndsl.errors import CompileError, ExportError
from cnndsl.export.triton import ServeOptions, Tensor, check_model_name, config_text, triton_type
from cnndsl.io import StagingError, publish
from cnndsl.onnx.emit import INPUT, OUTPUT
from cnndsl.views.term import shown_path

if TYPE_CHECKING:
    from cnndsl.api import CompileOptions, CompileResult, Network

MODEL_FILE = "model.onnx"  # the file name Triton's onnxruntime backend looks for
CONFIG_FILE = "config.pbtxt"
INTERFACE_TYPE = "FLOAT"  # emit.build keeps a float32 input and output, float16 models included


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the model folder, the version's files, what became of the config, and
    the compile's result (opset, size, notes for the user)."""

    model_dir: str
    version: int
    files: list[str]
    config: str  # "written", "replaced" or "unchanged"
    versions: list[int]
    compiled: CompileResult


def export_triton(net: Network, repo: str, name: str | None, version: int, force: bool, options: CompileOptions,
                  serve: ServeOptions) -> Exported:
    """Compile ``net`` (Network.compile, with ``options``) to ``REPO/NAME/VERSION/model.onnx`` and
    write ``REPO/NAME/config.pbtxt``; NAME is the network's name unless given.

    An existing version, or an existing config.pbtxt that differs from the one this export would
    write, is kept unless ``force``.
    """
    from cnndsl.onnx.compile import check_fits

    name = check_model_name(name or net.name)
    graph = net.graph
    inputs = [Tensor(INPUT, triton_type(INTERFACE_TYPE), graph.input_shape)]
    outputs = [Tensor(OUTPUT, triton_type(INTERFACE_TYPE), graph.output_shape)]
    text = config_text(name, inputs, outputs, serve)
    if version < 1:
        raise ExportError(f"--version {version}: Triton versions are 1 or more", hint="use --version 1")
    check_fits(graph, repo, options.dtype)  # refuse what cannot fit here before touching the repository
    repo_dir, made = _repo_dir(repo)
    model_dir = os.path.join(repo_dir, name)
    try:
        config = _check_target(model_dir, version, text, force)
        compiled = _write_model(net, model_dir, version, text, config, options)
    except BaseException:
        if made:
            _unmake(repo_dir, made)
        raise
    files = [os.path.join(model_dir, str(version), os.path.basename(p)) for p in compiled.paths]
    return Exported(model_dir, version, files + [os.path.join(model_dir, CONFIG_FILE)], config,
                    _versions(model_dir), compiled)


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
        raise ExportError("exists and is not a folder: Triton needs a model folder here", path=shown_path(model_dir))
    version_dir = os.path.join(model_dir, str(version))
    if os.path.exists(version_dir) and not os.path.isdir(version_dir):
        raise ExportError("exists and is not a version folder", path=shown_path(version_dir),
                          hint="move it away, or export as another --version")
    if os.path.exists(version_dir) and not force:
        raise ExportError(f"version {version} of this model exists", path=shown_path(version_dir),
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
                          path=shown_path(os.path.join(model_dir, CONFIG_FILE)),
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


def _write_model(net: Network, model_dir: str, version: int, text: str, config: str,
                 options: CompileOptions) -> CompileResult:
    """Publish (cnndsl.io) a new model's whole folder at once; beside an existing model's other
    versions, its version folder, then its config if that changes."""
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
        try:
            compiled = net.compile(replace(options, output=os.path.join(version_dir, MODEL_FILE)))
        except CompileError as exc:
            if exc.path and exc.path.startswith(staged):  # name the model folder, not the staging path
                raise ExportError(f"cannot write the model: {exc.message.rsplit(': ', 1)[-1]}",
                                  path=shown_path(model_dir)) from None
            raise
        if config_path:
            with open(config_path, "w", encoding="utf-8") as fh:
                fh.write(text)
    return compiled


def _write_error(exc: OSError, model_dir: str, parent: str) -> ExportError:
    if isinstance(exc, StagingError):
        return ExportError(f"cannot write here: {exc.strerror}", path=shown_path(parent))
    return ExportError(f"cannot write the model: {exc.strerror}", path=shown_path(model_dir))
