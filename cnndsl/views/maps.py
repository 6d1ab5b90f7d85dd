"""Pictures out of `cnndsl run --save-maps`: each map as a PNG file, and a labelled grid with the input beside.

Colours (``colour_maps``). By default the maps of one layer share one colour scale, so that their values
compare: the course's `darken` filter looks darker than `identity` and `lighten` lighter. Maps with no
negative value are grey from 0 (black) up; maps with negative values use a diverging scale centred on zero
(blue below, white at zero, red above), so a sign reads at a glance. Each of the two kinds shares its
limit across the layer; the limit leaves out the extreme 1% of values (``clip``), so that a few border
artefacts do not wash out the rest. ``scale="map"`` gives each map its own scale instead (a grey map is
then min-max normalised, showing its pattern and not its size); ``clip=0`` keeps every value. +inf is
drawn as the top of the scale, -inf as the bottom, NaN black. The grid's title states the scale, and each
caption the map's own range. The grid shows at most the first 256 maps. Images in are read by image.py;
Pillow is imported only when needed.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from cnndsl.errors import RunError
from cnndsl.io import StagingError, publish
from cnndsl.layers import ConcatChannels
from cnndsl.model.ir import Graph

GRID = "grid.png"
MASK = "mask.png"  # the arg-max class of each pixel, coloured (an output of several class maps)
GRID_MAX = 256  # maps shown in grid.png; every map still gets its own file
PAD, TITLE, CAPTION, LEGEND = 8, 26, 32, 18  # grid spacing, title, per-map caption and legend heights, pixels
MIN_CELL, MAX_CELL, SMALL = 128, 320, 200  # cell width and map sizes in the grid (see grid_layout)
MARK = "cnndsl run --save-maps"  # PNG text "Software" of the files we write: how we know our own
MAP_FILE = re.compile(r"(\d+)(_\w+)?\.png")  # a map's file name (see map_names)
SCALES = ("layer", "map")  # one colour scale for a layer's maps, or one for each map
CLIP = 1.0  # percent of the values left out of a scale's limit (the largest magnitudes)


def channel_labels(graph: Graph) -> list[str | None]:
    """One label per output channel: the branch label where the output is a concat of labelled
    branches (``sobel_left: fixedconv ...``), else None. Looks through layers that keep each
    channel apart (activations, pools) between the concat and the output."""
    count = graph.output_shape[0] if len(graph.output_shape) == 3 else 0
    index = len(graph.nodes) - 1
    while index >= 0 and not isinstance(graph.nodes[index].layer, ConcatChannels):
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
        labels.extend([None if i < 0 else _branch_label(graph, i, scope)] * shape[0])
    return labels


def _branch_label(graph: Graph, index: int, scope: list[str]) -> str | None:
    """The label of the concat branch that ends in node ``index``, looking through an activation
    fused into the labelled statement (``edge: fixedconv ... relu``: the relu has no name of its own)."""
    node = graph.nodes[index]
    while True:
        parts = node.name.split(".")
        first = parts[len(scope)] if parts[:len(scope)] == scope and len(parts) > len(scope) else ""
        if first and not first.isdigit():
            return first
        source = node.inputs[0] if len(node.inputs) == 1 else -1
        if source < 0 or node.span is None:
            return None
        before = graph.nodes[source]
        if (before.span, before.trace) != (node.span, node.trace):  # not the same statement: not fused
            return None
        node = before


def map_names(labels: list[str | None]) -> list[str]:
    """File names: the channel index, then the branch label where there is one (``2_sobel_left.png``)."""
    return [f"{i}_{label}.png" if label else f"{i}.png" for i, label in enumerate(labels)]


def normalise(values: np.ndarray, clip: float = 0.0) -> np.ndarray:
    """A map min-max scaled to uint8 0..255 over its finite values (with ``clip``, between their clip and
    100-clip percentiles, clipped there); a constant map is mid grey (128); +inf is white (255), -inf and
    NaN black (0)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out = np.full(values.shape, 128, dtype=np.uint8)
    if finite.any():
        low, high = (float(v) for v in np.percentile(values[finite], [clip, 100.0 - clip]))
        if high > low:
            scaled = np.clip((values[finite] - low) / (high - low), 0.0, 1.0)
            out[finite] = np.round(scaled * 255.0).astype(np.uint8)
    out[values == np.inf] = 255
    out[np.isnan(values) | (values == -np.inf)] = 0
    return out


@dataclass(frozen=True)
class Coloured:
    """Maps as pictures: uint8 HxW (grey) or HxWx3 (diverging), and the scales in words."""

    pictures: list[np.ndarray]
    legend: str


def _diverging() -> np.ndarray:
    """256 RGB colours from blue through white (at 127.5) to red: matplotlib's RdBu, reversed."""
    import matplotlib

    return np.round(matplotlib.colormaps["RdBu_r"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def _limit(values: np.ndarray, clip: float) -> float:
    """The magnitude the scale ends at: the (100 - clip)th percentile of the finite |values| (their max
    with clip 0); 0 where there is none."""
    finite = np.abs(values[np.isfinite(values)])
    if not finite.size:
        return 0.0
    return float(np.percentile(finite, 100.0 - clip) if clip > 0 else finite.max())


def _grey(values: np.ndarray, limit: float) -> np.ndarray:
    out = np.zeros(values.shape, dtype=np.uint8)
    finite = np.isfinite(values)
    if limit > 0:
        out[finite] = np.round(np.clip(values[finite] / limit, 0.0, 1.0) * 255.0).astype(np.uint8)
    out[values == np.inf] = 255
    return out


def _signed(values: np.ndarray, limit: float, lut: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    index = np.full(values.shape, 128, dtype=np.int64)  # white: zero, and a map that is all zero
    if limit > 0:
        index[finite] = np.round((np.clip(values[finite] / limit, -1.0, 1.0) + 1.0) * 127.5).astype(np.int64)
    index[values == np.inf] = 255
    index[values == -np.inf] = 0
    out = lut[index]
    out[np.isnan(values)] = 0
    return out


def colour_maps(channels: np.ndarray, scale: str = "layer", clip: float = CLIP) -> Coloured:
    """One sample's maps (CxHxW) as pictures, on one scale for the layer or one for each map (see the module
    docstring); ``clip``: the percent of the largest magnitudes left out of a limit."""
    if scale not in SCALES:
        raise RunError(f"unknown colour scale '{scale}'", hint=f"use one of {', '.join(SCALES)}")
    if not 0 <= clip < 50:
        raise RunError(f"--clip takes a percent from 0 to 50 (left out at the top), not {clip:g}")
    values = np.asarray(channels, dtype=np.float64)
    signed = [bool((c[np.isfinite(c)] < 0).any()) for c in values]
    lut = _diverging() if any(signed) else None
    clipped = f", the top {clip:g}% of magnitudes clipped" if clip > 0 else ""
    if scale == "map":
        pictures = []
        for c, sign in zip(values, signed, strict=True):
            if sign:
                pictures.append(_signed(c, _limit(c, clip), lut))
            else:
                pictures.append(normalise(c, clip))
        return Coloured(pictures, f"each map on its own scale{clipped}")
    grey_limit = _limit(values[[not s for s in signed]], clip) if not all(signed) else 0.0
    signed_limit = _limit(values[signed], clip) if any(signed) else 0.0
    pictures = [_signed(c, signed_limit, lut) if sign else _grey(c, grey_limit)
                for c, sign in zip(values, signed, strict=True)]
    parts = []
    if not all(signed):
        parts.append(f"grey 0 .. {grey_limit:.3g}")
    if any(signed):
        parts.append(f"blue {-signed_limit:.3g} .. white 0 .. red {signed_limit:.3g}")
    return Coloured(pictures, f"one scale for all maps: {'; '.join(parts)}{clipped}")


def input_picture(x: np.ndarray) -> np.ndarray | None:
    """An input sample (CxHxW in 0..1, 1 or 3 channels) as a uint8 picture to show beside the maps; None
    for an input that is not an image."""
    if x.ndim != 3 or x.shape[0] not in (1, 3) or not np.isfinite(x).all():
        return None
    picture = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    return picture[0] if x.shape[0] == 1 else picture.transpose(1, 2, 0)


def _caption(index: int, label: str | None, values: np.ndarray) -> tuple[str, str]:
    """A map's two caption lines: its index and label, then the range of its finite values."""
    finite = values[np.isfinite(values)]
    note = f"values {float(finite.min()):.3g} .. {float(finite.max()):.3g}" if finite.size else "no finite values"
    if finite.size < values.size:
        note += f", {values.size - finite.size:,} inf/NaN"
    return (f"{index}: {label}" if label else str(index), note)


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


def make_grid(maps: list[np.ndarray], captions: list[tuple[str, str]], title: str, legend: str = "",
              picture: np.ndarray | None = None):
    """One image of all the maps (uint8 HxW or HxWx3 each), each captioned with two lines, under a title and
    the legend of their colours; ``picture``, the input, in the first cell where given."""
    from PIL import Image, ImageDraw

    height, width = maps[0].shape[:2]
    cells = ([picture] if picture is not None else []) + list(maps)
    notes = ([("input", f"{picture.shape[1]}x{picture.shape[0]} pixels")] if picture is not None else []) + captions
    layout = grid_layout(len(cells), height, width)
    grid = Image.new("RGB", (layout.size[0], layout.size[1] + (LEGEND if legend else 0)), (255, 255, 255))
    pen = ImageDraw.Draw(grid)
    font = _font(14)
    small = _font(12)
    pen.text((PAD, PAD + 2), _fit(pen, title, font, layout.size[0] - 2 * PAD), fill=(0, 0, 0), font=font)
    top = TITLE
    if legend:
        pen.text((PAD, TITLE + 2), _fit(pen, legend, small, layout.size[0] - 2 * PAD), fill=(70, 70, 70), font=small)
        top += LEGEND
    for k, (values, (label, note)) in enumerate(zip(cells, notes, strict=True)):
        row, col = divmod(k, layout.cols)
        x = PAD + col * (layout.cell_width + PAD)
        y = top + PAD + row * (layout.map_size[1] + CAPTION + PAD)
        image = Image.fromarray(values).convert("RGB")
        resample = Image.Resampling.NEAREST if layout.map_size[0] >= width else Image.Resampling.LANCZOS
        size = layout.map_size
        if values is picture and values.shape[:2] != (height, width):  # the input: its own aspect, in the cell
            scale = min(size[0] / values.shape[1], size[1] / values.shape[0])
            size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
            resample = Image.Resampling.LANCZOS
        grid.paste(image.resize(size, resample), (x, y))
        pen.rectangle((x - 1, y - 1, x + size[0], y + size[1]), outline=(160, 160, 160))
        pen.text((x, y + layout.map_size[1] + 2), _fit(pen, label, font, layout.cell_width), fill=(0, 0, 0), font=font)
        pen.text((x, y + layout.map_size[1] + 17), _fit(pen, note, small, layout.cell_width), fill=(90, 90, 90),
                 font=small)
    return grid


def grid_png(channels: np.ndarray, title: str, labels: list[str | None] | None = None, scale: str = "layer",
             clip: float = CLIP, picture: np.ndarray | None = None) -> bytes:
    """The labelled grid of one sample's maps (CxHxW) as PNG bytes, in memory (the playground's picture),
    coloured as ``colour_maps`` says, the input ``picture`` first where given; at most GRID_MAX maps, the
    title saying so when there are more."""
    import io

    labels = labels if labels is not None and len(labels) == len(channels) else [None] * len(channels)
    if len(channels) > GRID_MAX:
        title += f" (the first {GRID_MAX} of {len(channels)})"
    coloured = colour_maps(channels, scale, clip)
    shown = list(zip(labels[:GRID_MAX], channels[:GRID_MAX], strict=True))
    captions = [_caption(i, label, c) for i, (label, c) in enumerate(shown)]
    out = io.BytesIO()
    make_grid(coloured.pictures[:GRID_MAX], captions, title, coloured.legend, picture).save(
        out, format="PNG", pnginfo=_mark())
    return out.getvalue()


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


def check_maps_shape(shape: tuple, layer: str | None = None) -> None:
    """A RunError unless an output of ``shape`` (batch first) is maps, batch x CxHxW (``layer``: the --layer
    whose output it is)."""
    if len(shape) != 4:
        shown = "x".join(str(d) if isinstance(d, int) else "N" for d in shape)
        if layer:
            raise RunError(f"--save-maps needs maps (CxHxW); layer {layer} gives {shown}",
                           hint="choose a conv, pool or activation layer before the flatten")
        raise RunError(f"--save-maps needs an output of maps (batch x CxHxW); this model's output is {shown}",
                       hint="save the maps of a network whose output is feature maps, e.g. specs/filters.cnn, "
                            "or of one of its layers with --layer NAME")


def palette(classes: int) -> np.ndarray:
    """A fixed colour per class (classes x 3, uint8): Pascal VOC's, where class 0 (background) is
    black and the bits of each class number are spread over the high bits of red, green and blue,
    so neighbouring classes differ clearly."""
    colours = np.zeros((classes, 3), dtype=np.uint8)
    for k in range(classes):
        code, rgb = k, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << bit
            code >>= 3
        colours[k] = rgb
    return colours


def class_mask(scores: np.ndarray) -> np.ndarray:
    """The coloured arg-max map (HxWx3 uint8) of a CxHxW output of class scores; NaN never wins."""
    safe = np.where(np.isnan(scores), -np.inf, scores)
    return palette(scores.shape[0])[np.argmax(safe, axis=0)]


def save_maps(y: np.ndarray, folder: str, labels: list[str | None], title: str,
              force: bool = False, mask: bool = False, scale: str = "layer", clip: float = CLIP,
              picture: np.ndarray | None = None) -> tuple[list[str], list[str]]:
    """Write each channel of the first sample of ``y`` (NxCxHxW) as a PNG, and ``grid.png``, into
    ``folder``; returns (the file names, notes for stderr). The files are staged and published
    (cnndsl.io) after every target is checked, so a failure leaves nothing half-written. Map files
    of an earlier run that this one does not rewrite are removed (only ours: they carry a PNG text
    mark); others named like maps are kept, with a note. A file in the way that cnndsl did not
    write is replaced only with ``force``. With ``mask``, also ``mask.png``: the arg-max class of
    each pixel in a fixed palette (a segmentation's answer). ``scale`` and ``clip``: see colour_maps;
    ``picture``: the input, shown first in the grid."""
    check_maps_shape(y.shape)
    coloured = colour_maps(y[0], scale, clip)
    if len(labels) != y.shape[1]:
        labels = [None] * y.shape[1]
    names = map_names(labels)
    notes = []
    for name, channel in zip(names, y[0], strict=True):
        bad = int(channel.size - np.count_nonzero(np.isfinite(channel)))
        if bad:
            notes.append(f"map {name} has {bad:,} NaN or infinite values: drawn +inf as the top of the scale, "
                         "-inf as its bottom, NaN black")
    if len(names) > GRID_MAX:
        notes.append(f"{GRID} shows the first {GRID_MAX} of the {len(names)} maps")
        title += f" (the first {GRID_MAX} of {len(names)})"
    target = check_folder(folder, force)
    existed = os.path.isdir(target)
    extra = [GRID] + ([MASK] if mask else [])
    with publish(lambda exc: _write_error(exc, target)) as pub:
        paths = _stage(pub, target, names + extra, force)
        _write_maps(paths[:len(names)], coloured.pictures)
        shown = zip(labels[:GRID_MAX], y[0][:GRID_MAX], strict=True)
        captions = [_caption(i, label, c) for i, (label, c) in enumerate(shown)]
        make_grid(coloured.pictures[:GRID_MAX], captions, title, coloured.legend, picture).save(
            paths[len(names)], format="PNG", pnginfo=_mark())
        if mask:
            from PIL import Image

            Image.fromarray(class_mask(y[0])).save(paths[-1], format="PNG", pnginfo=_mark())
    if existed:
        notes += _remove_stale(target, set(names + extra))
    return names + extra, notes


def _stage(pub, target: str, names: list[str], force: bool) -> list[str]:
    """Where each file is written before it is published (cnndsl.io): in a staged folder when
    ``target`` is new, else beside each file it replaces, once every one of them is checked."""
    if not os.path.isdir(target):
        staged = pub.folder(target)
        return [os.path.join(staged, name) for name in names]
    for name in names:
        _check_target(os.path.join(target, name), force)
    return [pub.file(os.path.join(target, name)) for name in names]


def _write_error(exc: OSError, target: str) -> RunError:
    if isinstance(exc, StagingError):
        return RunError(f"cannot write here: {exc.strerror}", path=target)
    return RunError(f"cannot write the maps: {exc.strerror or exc}", path=target,
                    hint="free some space or choose another folder for --save-maps")


def _mark():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", MARK)
    return info


def _write_maps(paths: list[str], pictures: list[np.ndarray]) -> None:
    """Each map's picture saved as a marked PNG at its path."""
    from PIL import Image

    for path, picture in zip(paths, pictures, strict=True):
        Image.fromarray(picture).save(path, format="PNG", pnginfo=_mark())


def check_folder(folder: str, force: bool = False) -> str:
    """The normalised ``folder`` for --save-maps, or a RunError if it cannot be one: not a folder,
    no parent, not writable, or a folder where grid.png goes. Done before running the model."""
    target = os.path.normpath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise RunError("exists and is not a folder", path=target, hint="name a folder for --save-maps")
    parent = os.path.dirname(target) or "."
    if not os.path.isdir(parent):
        raise RunError(f"the folder {parent} does not exist", path=target, hint=f"create it first: mkdir -p {parent}")
    _check_writable(target if os.path.isdir(target) else parent)
    if os.path.isdir(target):
        _check_target(os.path.join(target, GRID), force)
    return target


def _check_writable(folder: str) -> None:
    """A RunError unless we can make files in ``folder``: permissions, then a real (deleted) file."""
    problem = None if os.access(folder, os.W_OK | os.X_OK) else "no write permission"
    if problem is None:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".cnndsl-probe-"):
                pass
        except OSError as exc:
            problem = exc.strerror or str(exc)
    if problem:
        raise RunError(f"cannot write into this folder: {problem}", path=folder,
                       hint="choose a folder you can write to for --save-maps")


def _check_target(path: str, force: bool) -> None:
    """A RunError if a map file cannot be put at ``path``: a folder or a write-protected file is
    there, or (unless ``force``) a file that cnndsl did not write."""
    if os.path.isdir(path):
        raise RunError("is a folder, where --save-maps writes a map", path=path,
                       hint="move it away, or choose another folder for --save-maps")
    if os.path.isfile(path) and not os.access(path, os.W_OK):
        raise RunError("is write-protected, where --save-maps writes a map", path=path,
                       hint="move it away, or choose another folder for --save-maps")
    if os.path.isfile(path) and not force and not _is_ours(path):
        raise RunError("is a file cnndsl did not write, where --save-maps writes a map: refusing to replace it",
                       path=path, hint="use --force to replace it, or choose another folder for --save-maps")


def _remove_stale(target: str, keep: set[str]) -> list[str]:
    """Remove the map files in ``target`` that we wrote in an earlier run and not now; notes."""
    ours, others, failed = [], [], []
    found = [(int(m.group(1)), m.string) for m in map(MAP_FILE.fullmatch, os.listdir(target)) if m]
    if MASK not in keep and os.path.exists(os.path.join(target, MASK)):
        found.append((1 << 62, MASK))  # listed last
    for _, name in sorted(found):
        if name not in keep:
            (ours if _is_ours(os.path.join(target, name)) else others).append(name)
    for name in ours:
        try:
            os.remove(os.path.join(target, name))
        except OSError:
            failed.append(name)
    notes = []
    removed = [name for name in ours if name not in failed]
    if removed:
        notes.append(f"removed {_count(removed, 'map file')} of an earlier run from {target}: {_listed(removed)}")
    if failed:
        notes.append(f"could not remove {_listed(failed)} (maps of an earlier run) from {target}")
    if others:
        what = "a map" if len(others) == 1 else "maps"
        notes.append(f"left {_listed(others)} in {target}: named like {what}, but not written by cnndsl")
    return notes


def _is_ours(path: str) -> bool:
    """Whether ``path`` is a PNG with our mark (its text chunk comes before the pixels)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"tEXtSoftware\x00" + MARK.encode() in head


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"
