"""The `cnndsl run` command's work: get a model, make an input, run, and print the result."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import click
import numpy as np

from cnndsl.errors import RunError
from cnndsl.views.term import echo_err


def model_source(path: str, seed: int, batch: int):
    """(path or serialised model, MACs per sample or None) for an .onnx file or a spec."""
    if path.lower().endswith(".onnx"):
        return _model_bytes(path, seed, batch), None
    from cnndsl.api import load

    return _model_bytes(path, seed, batch), load(path).totals.macs


def _model_bytes(path: str, seed: int, batch: int):
    """A path to an .onnx model, or the serialised model compiled from a spec."""
    if path.lower().endswith(".onnx"):
        import onnx

        try:
            onnx.load_model(path, load_external_data=False)
        except FileNotFoundError:
            raise RunError("no such file", path=path) from None
        except Exception as exc:  # noqa: BLE001 - any malformed file
            raise RunError(f"not a valid ONNX model ({type(exc).__name__})", path=path) from None
        return path
    from cnndsl.api import load
    from cnndsl.onnx.compile import PROTOBUF_LIMIT, check_run_fits, compile_model, compile_to_file

    net = load(path)
    check_run_fits(net.graph, batch)
    if net.totals.weight_bytes < PROTOBUF_LIMIT:
        return compile_model(net.graph, seed=seed).SerializeToString()
    folder = tempfile.mkdtemp(prefix="cnndsl-run-")  # too large for one protobuf: go through a file
    atexit.register(shutil.rmtree, folder, True)
    return compile_to_file(net.graph, os.path.join(folder, net.name + ".onnx"), seed=seed)[0]


def run_command(model: str, input_path: str | None, device: str, top: int, seed: int, batch: int,
                image: str | None = None, resize: bool = False, save_maps: str | None = None) -> None:
    from cnndsl.runtime.run import CPU, Runner

    if image and input_path:
        raise click.UsageError("--image and --input are two ways to give the input: use one")
    if resize and not image:
        raise click.UsageError("--resize applies to --image")
    if image and batch != 1:
        raise click.UsageError("--batch sets the size of the random input; --image gives one image (a batch of 1)")
    if save_maps:
        from cnndsl.views.maps import check_folder

        check_folder(save_maps)
    runner = Runner.from_model(_model_bytes(model, seed, batch), device=device)
    if runner.note:
        echo_err(f"note: {runner.note}")
    if save_maps:
        from cnndsl.views.maps import check_maps_shape

        check_maps_shape(tuple(runner.session.get_outputs()[0].shape))
    x, source = _input(runner, input_path, image, resize, seed, batch)
    x = runner.check_input(np.asarray(x))
    y = runner.run(x)
    bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
    if bad:
        echo_err(f"warning: {bad:,} of {y.size:,} output values are NaN or infinite (an overflow: in a float16 "
                 "model, try compiling as float32)")
    where = "GPU" if runner.provider != CPU else "CPU"
    click.echo(f"provider: {runner.provider} ({where})")
    click.echo(f"input: {'x'.join(map(str, x.shape))} from {source}")
    click.echo(f"output: {'x'.join(map(str, y.shape))}")
    if save_maps:
        _save_maps(model, y, save_maps, image or input_path)
    elif y.ndim == 2 and y.shape[1] > 1:
        _print_top(y, top)
    elif y.size <= 256:
        _print_values(y)


def _input(runner, input_path: str | None, image: str | None, resize: bool, seed: int, batch: int):
    """(the input batch, where it came from) for --input, --image or a seeded random batch."""
    from cnndsl.runtime.run import load_input

    if image:
        from cnndsl.runtime.image import MODES, load_image

        x, notes = load_image(image, runner.input_shape, resize)
        for note in notes:
            echo_err(f"note: {note}")
        return x, f"{image} ({MODES[x.shape[1]][1]}, pixels scaled to 0..1)"
    if input_path:
        return load_input(input_path, runner.input_shape), input_path
    dims = [d if isinstance(d, int) else batch for d in runner.input_shape]
    dims[0] = batch
    return np.random.default_rng(seed).standard_normal(dims, dtype=np.float32), f"seeded random (seed {seed})"


def _save_maps(model: str, y: np.ndarray, folder: str, source: str | None) -> None:
    """Write the output maps of the first sample as PNGs and a labelled grid (cnndsl.maps)."""
    from cnndsl.views.maps import channel_labels, save_maps

    labels: list[str | None] = []
    name = os.path.splitext(os.path.basename(model))[0]
    if not model.lower().endswith(".onnx"):
        from cnndsl.api import load

        graph = load(model).graph
        labels, name = channel_labels(graph), graph.name
    if y.ndim == 4 and y.shape[0] > 1:
        echo_err(f"note: saving the maps of the first of {y.shape[0]} samples")
    shown = os.path.basename(source) if source else "a seeded random input"
    written, notes = save_maps(y, folder, labels, f"{name}: output maps for {shown}")
    for note in notes:
        echo_err(f"note: {note}")
    count = len(written) - 1
    click.echo(f"wrote {count} map{'' if count == 1 else 's'} and {written[-1]} to "
               f"{os.path.normpath(folder)}{os.sep}")


def _print_values(y: np.ndarray) -> None:
    whole = np.all(np.abs(y - np.round(y)) < 1e-4)
    shown = np.round(y).astype(np.int64) if whole else y
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        maps = list(np.ndindex(*y.shape[:-2])) if y.ndim > 2 else [()]
        for index in maps:
            if len(maps) > 1:
                click.echo(f"[{', '.join(map(str, index))}]")
            click.echo(str(shown[index]))


def _print_top(y: np.ndarray, k: int) -> None:
    k = max(1, min(k, y.shape[1]))
    for i, row in enumerate(y[:4]):
        order = np.argsort(-row, kind="stable")[:k]
        click.echo(f"sample {i}: top {k} of {y.shape[1]} classes")
        for c in order:
            click.echo(f"  class {c:>5}  score {row[c]: .6f}")
    if y.shape[0] > 4:
        click.echo(f"({y.shape[0] - 4} more samples not shown)")
