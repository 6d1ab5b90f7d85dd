"""What the playground computes, as plain functions of the spec text: no HTTP here.

Every function takes text a browser sent, which is untrusted: specs go through the same parser, checker
and limits as on the command line; file names are checked against a listing, never joined blindly.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import stat
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

from cnndsl import api
from cnndsl.errors import CnnDslError, GraphError, RunError
from cnndsl.io import forget_input, rewriting, write_bytes
from cnndsl.views import graph as graph_view
from cnndsl.views import report
from cnndsl.views.graph import fitting_depth
from cnndsl.views.maps import grid_png

SPEC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.cnn")
MAX_IMAGE_BYTES = 20 << 20
TRAINING_BATCH = 32  # the totals' training-memory estimate (summary prints 1, 32 and 256)
GAP_SPECS = ("mlp_mnist.cnn", "lenet5.cnn", "mlp_12mp.cnn")  # the course's MLP-vs-CNN comparison (README)


class Cache:
    """A small thread-safe LRU: the same text checked twice (several tabs, an undo) costs one check."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


_NETWORKS = Cache(32)
_DIAGRAMS = Cache(8)  # SVG text: up to some MB each
_SAVING = threading.Lock()
MAX_DRAWN = 3000  # boxes in one diagram; Graphviz takes about a second for ResNet-152's 515
DOT_SECONDS = 30
_CUT = Cache(2)  # networks cut after a layer, with their compiled sessions (a session holds its weights)


def digest(text: str) -> str:
    """The sha256 of a spec's text: what a save compares to know the file is still the one opened."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key(text: str, name: str) -> str:
    return hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()


def _cached(cache: Cache, key, make, errors: type[Exception]):
    """``make()`` through ``cache``, an error of type ``errors`` included: it is kept without its traceback and
    raised as a copy each time (raising the same object again would grow its traceback, frames and texts of
    every request included, without end)."""

    def kept():
        try:
            return make()
        except errors as exc:
            return exc.with_traceback(None)

    value = cache.get(key, kept)
    if isinstance(value, errors):
        raise copy.copy(value)
    return value


def network(text: str, name: str) -> api.Network:
    """The checked network (cached by text); raises CnnDslError."""
    return _cached(_NETWORKS, _key(text, name), lambda: api.parse(text, path=name), CnnDslError)


def diagnostic(exc: CnnDslError) -> dict:
    """An error or warning as the editor marks it: 1-based line and column of its start and end."""
    out = exc.to_dict()
    out["severity"] = exc.kind
    out.pop("path", None)
    return out


def check(text: str, name: str = "playground.cnn") -> dict:
    """Everything the page shows while typing: diagnostics, or the layer table and the totals."""
    try:
        net = network(text, name)
    except CnnDslError as exc:
        return {"ok": False, "diagnostics": [diagnostic(exc)]}
    graph = net.graph
    t = net.totals
    rows = []
    for i, (node, row) in enumerate(zip(graph.nodes, report.layers_json(graph), strict=True)):
        row["from"] = graph.source_of(i)
        row["line"] = node.span.line if node.span is not None else None
        row["hidden"] = node.hidden
        rows.append(row)
    totals = asdict(t)
    totals["weight_bytes_text"] = report.human_bytes(t.weight_bytes)
    totals["activation_bytes_text"] = report.human_bytes(t.activation_bytes)
    training = report.training_memory(t, TRAINING_BATCH)
    totals["training"] = {"batch": TRAINING_BATCH, **{k: report.human_bytes(v) for k, v in training.items()}}
    outputs = [{"name": o.name, "shape": list(graph.shape_of(o.index)), "training_only": o.train}
               for o in graph.output_list()]
    return {"ok": True, "diagnostics": [diagnostic(w) for w in graph.warnings], "name": graph.name,
            "title": graph.title, "input": list(graph.input_shape), "output": list(graph.output_shape),
            "outputs": outputs, "totals": totals, "layers": rows, "calls": graph.calls,
            "map_layers": [n.name for n in graph.nodes if len(n.out_shape) == 3 and not n.hidden]}


def diagram(text: str, name: str = "playground.cnn", depth: int | None = -1) -> dict:
    """The architecture as SVG through Graphviz (``depth`` -1: a depth that fits a page; None: every layer, up
    to MAX_DRAWN boxes; a depth past the deepest draws every layer); Graphviz gets DOT_SECONDS."""
    from cnndsl.views.diagram import browser_svg

    net = network(text, name)
    deepest = max((n.count(".") + 1 for n in net.layers), default=1)
    if depth == -1:
        depth = fitting_depth(net.graph)
    elif depth is not None and depth >= deepest:
        depth = None
    boxes = len({".".join(n.split(".")[:depth]) for n in net.layers}) if depth else len(net.layers)
    if boxes > MAX_DRAWN:
        raise GraphError(f"{boxes:,} boxes are more than the playground draws ({MAX_DRAWN:,})",
                         hint="choose a smaller depth, or draw it with cnndsl graph")
    svg = _cached(_DIAGRAMS, (_key(text, name), depth),
                  lambda: browser_svg(graph_view.to_dot(net.graph, depth), name, DOT_SECONDS), GraphError)
    return {"svg": svg, "depth": depth, "deepest": deepest}


def compile_model(text: str, name: str = "playground.cnn", seed: int = 0) -> bytes:
    """The ONNX model, seeded, serialised (Network.to_bytes: refused when it cannot be made here in memory,
    or is past protobuf's 2 GB)."""
    return network(text, name).to_bytes(seed)


def feature_maps(text: str, name: str, layer: str, image: bytes, filename: str = "upload.png",
                 scale: str = "layer") -> tuple[bytes, dict]:
    """A labelled grid (PNG) of every channel of ``layer`` for ``image`` (scaled to cover the input, the
    centre kept), with seeded weights, on one colour scale for the layer or one for each map (``scale``);
    ``filename`` is what the notes call the image."""
    shown = os.path.basename(filename)[:100] or "the image"
    suffix = os.path.splitext(shown)[1].lower()
    if len(image) > MAX_IMAGE_BYTES:
        raise RunError(f"the image is {len(image):,} bytes; the playground takes up to {MAX_IMAGE_BYTES:,}",
                       hint="use a smaller image")
    net = network(text, name)
    cut = _CUT.get((_key(text, name), layer), lambda: net.upto(layer))
    if len(cut.output_shape) != 3:
        raise RunError(f"layer {layer} gives {cut.output_shape}, not channels of a picture",
                       hint="choose a conv, pool or activation layer")
    cut.ensure_runs(1)  # before the image is decoded and resized to the input: that is as large as the input
    with tempfile.TemporaryDirectory(prefix="cnndsl-serve-") as folder:  # private (0700), removed after
        path = os.path.join(folder, "upload" + (suffix if re.fullmatch(r"\.[a-z]{2,4}", suffix) else ".png"))
        with open(path, "wb") as fh:
            fh.write(image)
        try:
            x, _, notes = api.model_input((1, *net.input_shape), image=path, resize="crop")
        finally:
            forget_input(path)  # removed with the folder: its inode may soon be a file the user saves
        notes = [note.replace(path, shown) for note in notes]  # the user's file name, not our temporary one
    y, provider = cut.run(x)
    png = grid_png(y[0], f"{net.name}: {layer}, {y.shape[1]} channels (random weights)", scale=scale)
    return png, {"provider": provider, "notes": notes, "channels": int(y.shape[1]),
                 "shape": list(cut.output_shape)}


# --- spec files: the shipped ones, and FOLDER's ------------------------------------------------------


PACKAGE = Path(__file__).resolve().parent.parent  # the cnndsl package


def shipped_folder(package: Path = PACKAGE) -> Path:
    """The shipped specs: installed as package data (cnndsl/specs), or specs/ beside the package in the
    source tree."""
    for folder in (package / "specs", package.parent / "specs"):
        if folder.is_dir():
            return folder
    raise CnnDslError("the shipped specs are missing from this installation", hint="reinstall cnndsl")


def listing(folder: Path | None) -> list[str]:
    """The .cnn regular files directly in ``folder`` (no links, nothing below it), sorted."""
    if folder is None:
        return []
    out = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if SPEC_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    out.append(entry.name)
    except OSError as exc:
        raise CnnDslError(f"cannot list the folder: {exc.strerror}", hint="is it still there, and readable?") from None
    return sorted(out)


def read(folder: Path, name: str) -> str:
    """A listed spec's text; anything not listed is refused the same way whether or not it exists. The file
    is opened without following a link (one put there since the listing is refused) and read from that
    handle, at most the spec size limit and one byte."""
    if name not in listing(folder):
        raise CnnDslError(f"no spec named '{name}' here", hint="choose one from the list")
    try:
        fd = os.open(folder / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CnnDslError(f"cannot read {name}: {exc.strerror}", hint="choose one from the list") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise CnnDslError(f"{name} is not a regular file", hint="choose one from the list")
        data = fh.read(api.MAX_SPEC_BYTES + 1)
    if len(data) > api.MAX_SPEC_BYTES:
        raise CnnDslError(f"{name} is larger than the spec size limit ({api.MAX_SPEC_BYTES:,} bytes)",
                          hint="open a smaller spec")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CnnDslError(f"{name} is not UTF-8 text", hint="save it as UTF-8") from None


def save(folder: Path, name: str, text: str, base: str | None) -> str:
    """Write ``text`` as FOLDER/``name``, atomically; ``base`` is the sha256 of the text the page loaded
    (None: a new file), so that a file changed on disk since is not overwritten. Returns the new digest."""
    if not SPEC_NAME.fullmatch(name):
        raise CnnDslError(f"'{name}' is not a spec name this playground saves",
                          hint="letters, digits, '_', '-' and '.', ending in .cnn, with no folder")
    if len(text.encode("utf-8")) > api.MAX_SPEC_BYTES:
        raise CnnDslError("the spec is larger than the spec size limit", hint="make it shorter")
    target = folder / name
    with _SAVING:  # the check and the write, one save at a time: two saves cannot both pass the check
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                raise CnnDslError(f"{name} is not a regular file in the folder", hint="save under another name")
            current = digest(read(folder, name))
            if base != current:
                raise CnnDslError(f"{name} changed on disk since it was opened" if base else f"{name} exists",
                                  hint="open it again, or save under another name")
            rewriting(target)  # the user's spec, opened to be edited and saved: its replacement is the point
        write_bytes(str(target), text.encode("utf-8"),
                    lambda exc: CnnDslError(f"cannot save {name}: {exc.strerror or exc}",
                                            hint="is the folder still there, and writable?"))
    return digest(text)


def language() -> dict:
    """Words the editor highlights, from the grammar and the layer registry (one source of truth)."""
    from cnndsl.views.highlight import grammar_keywords, layer_kinds

    return {"keywords": list(grammar_keywords()), "layers": list(layer_kinds())}


_LINEAGE: dict = {}
_LINEAGE_LOCK = threading.Lock()


def lineage() -> dict:
    """The shipped specs that carry a year, side by side (the table of `cnndsl params`) and charted (`cnndsl
    plot`): the MLP-vs-CNN gap in numbers. Computed once."""
    with _LINEAGE_LOCK:
        if not _LINEAGE:
            from cnndsl.views.plot import gap_note, lineage_data, lineage_svg

            folder = shipped_folder()
            nets = [(name, api.load(folder / name)) for name in listing(folder)]
            dated = [(name, net) for name, net in nets if net.graph.year]
            svg, note = lineage_svg([net.graph for _, net in dated])
            gap = [(name, net.graph) for name, net in nets if name in GAP_SPECS]
            _LINEAGE.update(table=report.compare([(name, net.graph) for name, net in dated]), svg=svg, note=note,
                            gap=report.compare(gap), gap_note=gap_note(lineage_data([g for _, g in gap])))
        return dict(_LINEAGE)
