"""Pictures in and out of `cnndsl run`: an image file as the input, output maps as PNG files.

Pixels become float32 values in 0..1 (value / 255), the usual scaling of torchvision's ToTensor;
an image is converted to grey ("L", ITU-R 601 luma) for a 1-channel input and to RGB for 3.
Each output map is min-max normalised to 0..255 grey on its own, so it shows the map's pattern,
not its scale: a linear filter such as `darken` looks like `identity`, and the grid's captions
give each map's range to tell them apart. Pillow is imported only here, and only when needed.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from .errors import RunError
from .ir import Graph

GRID = "grid.png"
PAD, TITLE, CAPTION = 8, 26, 32  # grid spacing, title strip and per-map caption heights, pixels
MIN_CELL, MAX_CELL, SMALL = 128, 320, 200  # cell width and map sizes in the grid (see grid_layout)
MODES = {1: ("L", "grey"), 3: ("RGB", "RGB")}


def load_image(path: str, input_shape: tuple, resize: bool) -> tuple[np.ndarray, list[str]]:
    """The image at ``path`` as a 1xCxHxW float32 batch in 0..1 for a model whose input is
    ``input_shape`` (N, C, H, W), and notes for stderr. A size that differs is refused unless
    ``resize``."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = _image_input(input_shape)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.convert(MODES[channels][0])
    except FileNotFoundError:
        raise RunError("no such image file", path=path) from None
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise RunError("cannot read the image: not an image format Pillow knows, or too large", path=path,
                       hint="use a PNG, JPEG or another format Pillow reads") from None
    except OSError as exc:
        raise RunError(f"cannot read the image: {exc.strerror or exc}", path=path) from None
    notes = []
    want = (width if isinstance(width, int) else image.width, height if isinstance(height, int) else image.height)
    if image.size != want:
        got, need = f"{image.width}x{image.height}", f"{want[0]}x{want[1]}"
        if not resize:
            raise RunError(f"the image is {got} pixels (width x height); the model's input is {need}",
                           path=path, hint=f"pass --resize to scale it to {need}, or crop it to that size")
        stretched = image.width * want[1] != image.height * want[0]
        image = image.resize(want, Image.Resampling.LANCZOS)
        notes.append(f"resized {path} from {got} to {need} pixels" + (", not keeping its aspect ratio"
                                                                      if stretched else ""))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return pixels[None], notes


def _image_input(input_shape: tuple) -> tuple[int, object, object]:
    """(channels, height, width) of a model input that an image can feed, or a RunError."""
    dims = tuple(input_shape[1:])
    shown = "x".join(map(str, dims))
    if len(dims) != 3:
        raise RunError(f"--image needs a model whose input is an image CxHxW; this one's input is {shown}",
                       hint="use --input with a .npy or .txt file of the right shape")
    if dims[0] not in MODES:
        raise RunError(f"--image reads grey (1 channel) or RGB (3 channel) images; the model's input has "
                       f"{dims[0]} channels ({shown})", hint="use --input with a .npy array of the right shape")
    return dims


def channel_labels(graph: Graph) -> list[str | None]:
    """One label per output channel: the branch label where the output is a concat of labelled
    branches (``sobel_left: fixedconv ...``), else None. Looks through layers that keep each
    channel apart (activations, pools) between the concat and the output."""
    count = graph.output_shape[0] if len(graph.output_shape) == 3 else 0
    index = len(graph.nodes) - 1
    while index >= 0 and graph.nodes[index].kind != "concat":
        node = graph.nodes[index]
        if len(node.inputs) != 1 or node.params or node.inputs[0] < 0:
            return [None] * count
        if graph.nodes[node.inputs[0]].out_shape[:1] != node.out_shape[:1]:
            return [None] * count
        index = node.inputs[0]
    if index < 0:
        return [None] * count
    concat = graph.nodes[index]
    scope = concat.name.split(".")[:-1]
    labels: list[str | None] = []
    for i in concat.inputs:
        shape = graph.input_shape if i < 0 else graph.nodes[i].out_shape
        label = None
        if i >= 0:
            parts = graph.nodes[i].name.split(".")
            first = parts[len(scope)] if parts[:len(scope)] == scope and len(parts) > len(scope) else ""
            label = None if first.isdigit() or not first else first
        labels.extend([label] * shape[0])
    return labels


def map_names(labels: list[str | None]) -> list[str]:
    """File names: the channel index, then the branch label where there is one (``2_sobel_left.png``)."""
    return [f"{i}_{label}.png" if label else f"{i}.png" for i, label in enumerate(labels)]


def normalise(values: np.ndarray) -> np.ndarray:
    """A map min-max scaled to uint8 0..255; a constant map is mid grey (128)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.full(values.shape, 128, dtype=np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class Layout:
    """Where the maps go in the grid: ``cols`` x ``rows`` cells, each map drawn at ``map_size``."""

    cols: int
    rows: int
    map_size: tuple[int, int]  # width, height of each drawn map
    cell_width: int
    size: tuple[int, int]  # the grid's width, height


def grid_layout(count: int, height: int, width: int) -> Layout:
    """Near-square grid. Maps up to 200 px are enlarged by a whole factor (crisp pixels) to near
    200 px; maps larger than 320 px are shrunk to fit 320."""
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    longest = max(height, width)
    factor = max(1, SMALL // longest) if longest <= SMALL else min(1.0, MAX_CELL / longest)
    map_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    cell_width = max(map_size[0], MIN_CELL)
    size = (cols * cell_width + (cols + 1) * PAD, TITLE + rows * (map_size[1] + CAPTION) + (rows + 1) * PAD)
    return Layout(cols, rows, map_size, cell_width, size)


def make_grid(maps: list[np.ndarray], captions: list[tuple[str, str]], title: str):
    """One image of all the maps (uint8 HxW each), each captioned with two lines, under a title."""
    from PIL import Image, ImageDraw

    height, width = maps[0].shape
    layout = grid_layout(len(maps), height, width)
    grid = Image.new("L", layout.size, 255)
    pen = ImageDraw.Draw(grid)
    font = _font(14)
    small = _font(12)
    pen.text((PAD, PAD + 2), _fit(pen, title, font, layout.size[0] - 2 * PAD), fill=0, font=font)
    for k, (values, (label, note)) in enumerate(zip(maps, captions, strict=True)):
        row, col = divmod(k, layout.cols)
        x = PAD + col * (layout.cell_width + PAD)
        y = TITLE + PAD + row * (layout.map_size[1] + CAPTION + PAD)
        picture = Image.fromarray(values)
        resample = Image.Resampling.NEAREST if layout.map_size[0] >= width else Image.Resampling.LANCZOS
        grid.paste(picture.resize(layout.map_size, resample), (x, y))
        pen.rectangle((x - 1, y - 1, x + layout.map_size[0], y + layout.map_size[1]), outline=160)
        pen.text((x, y + layout.map_size[1] + 2), _fit(pen, label, font, layout.cell_width), fill=0, font=font)
        pen.text((x, y + layout.map_size[1] + 17), _fit(pen, note, small, layout.cell_width), fill=90, font=small)
    return grid


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(pen, text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis where it is wider than ``width`` pixels."""
    if pen.textlength(text, font=font) <= width:
        return text
    while text and pen.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def check_maps_shape(shape: tuple) -> None:
    """A RunError unless an output of ``shape`` (batch first) is maps, batch x CxHxW."""
    if len(shape) != 4:
        shown = "x".join(str(d) if isinstance(d, int) else "N" for d in shape)
        raise RunError(f"--save-maps needs an output of maps (batch x CxHxW); this model's output is {shown}",
                       hint="save the maps of a network whose output is feature maps, e.g. specs/filters.cnn")


def save_maps(y: np.ndarray, folder: str, labels: list[str | None], title: str) -> list[str]:
    """Write each channel of the first sample of ``y`` (NxCxHxW) as a PNG, and ``grid.png``, into
    ``folder``; returns the file names. All files are made in a temporary folder first, then moved
    into place, so a failure leaves nothing half-written."""
    check_maps_shape(y.shape)
    maps = [normalise(channel) for channel in y[0]]
    if len(labels) != len(maps):
        labels = [None] * len(maps)
    captions = [(f"{i}: {label}" if label else str(i), f"values {float(c.min()):.3g} .. {float(c.max()):.3g}")
                for i, (label, c) in enumerate(zip(labels, y[0], strict=True))]
    names = map_names(labels)
    target = os.path.normpath(folder)
    staging = _staging(target)
    try:
        from PIL import Image

        for name, values in zip(names, maps, strict=True):
            Image.fromarray(values).save(os.path.join(staging, name), format="PNG")
        make_grid(maps, captions, title).save(os.path.join(staging, GRID), format="PNG")
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names + [GRID]


def check_folder(folder: str) -> str:
    """The normalised ``folder`` for --save-maps, or a RunError if it cannot be one."""
    target = os.path.normpath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise RunError("exists and is not a folder", path=target, hint="name a folder for --save-maps")
    parent = os.path.dirname(target) or "."
    if not os.path.isdir(parent):
        raise RunError(f"the folder {parent} does not exist", path=target, hint=f"create it first: mkdir -p {parent}")
    return target


def _staging(target: str) -> str:
    """A temporary folder on the same file system as ``target`` (so os.replace can move it)."""
    check_folder(target)
    try:
        staging = tempfile.mkdtemp(prefix=".cnndsl-maps-", dir=target if os.path.isdir(target) else
                                   os.path.dirname(target) or ".")
    except OSError as exc:
        raise RunError(f"cannot write here: {exc.strerror}", path=target) from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would become the new folder's mode
    return staging


def _publish(staging: str, target: str) -> None:
    """Move the finished files into place: the whole folder when ``target`` is new, else file by
    file (each os.replace is atomic; files of ``target`` that we do not write are kept)."""
    if not os.path.isdir(target):
        os.replace(staging, target)
        return
    for name in sorted(os.listdir(staging)):
        os.replace(os.path.join(staging, name), os.path.join(target, name))
