"""`cnndsl import`: an ONNX model read back as a spec a person would write, with its weights.

The steps, one module each: ``load`` reads the untrusted file (ops, constants, inferred shapes);
``lift`` turns nodes into layers; ``tree`` nests them into sequences and joins; ``names`` labels
them from the weight names; ``factor`` folds repeated structure into blocks and repeats; ``text``
writes the statements. Then the spec is checked by cnndsl itself and every weight is matched to
the layer that owns it by position and shape: what is written is proven to be the same network,
or import fails. The plain spec (every layer written out) is checked from its syntax (``plain``),
the factored one from its text, which must give exactly the plain one's layers; where the plain
spec is written, its text is proven. ``save`` writes the spec and the weights.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field

from cnndsl.errors import CnnDslError, ImportModelError
from cnndsl.importer import names as naming
from cnndsl.importer import save as saving
from cnndsl.importer.factor import Factored, factor
from cnndsl.importer.lift import Layer, Weight, lift
from cnndsl.importer.load import Source, load_source
from cnndsl.importer.plain import Unwritten, plain_spec
from cnndsl.importer.refs import name_skips
from cnndsl.importer.text import block_lines, lines
from cnndsl.importer.tree import Stmt, build
from cnndsl.lang.show import printable


@dataclass
class Imported:
    """An imported model: the spec's text, and each of its weights' source."""

    spec: str
    source: Source
    weights: saving.Weights  # the spec's weight name -> (its source, its shape)
    names_kept: bool  # whether the spec names its weights as the model did
    params: int  # trainable parameters of the spec
    notes: list[str] = field(default_factory=list)

    def arrays(self):
        """(name, float32 array) for each weight, read one at a time from the model."""
        for name, (w, shape) in self.weights.items():
            yield name, saving.array(self.source, w, shape)

    def save(self, spec: str | os.PathLike | None = None, weights: str | os.PathLike | None = None) -> None:
        """Write the spec and/or the weights (safetensors: see importer.save); both are published
        together when everything is written, and neither is left half-written otherwise."""
        saving.publish(self.source, spec, weights, lambda: self)


def import_onnx(path: str | os.PathLike, name: str | None = None, spec_out: str | os.PathLike | None = None,
                weights_out: str | os.PathLike | None = None, partial: bool = False) -> Imported:
    """Import the ONNX model at ``path`` as a spec (see the module's docstring). With ``spec_out``
    and/or ``weights_out``, also write them as ``Imported.save`` does; the weights then go first,
    under the model's names where the spec will keep them, and reach the disk while the spec is
    worked out and proven (they are written again if the proof names them otherwise)."""
    path = os.fspath(path)
    source = load_source(path)
    stmts = _statements(source, partial)
    net_name = _network_name(name, path)
    if spec_out is None and weights_out is None:
        return _imported(source, stmts, net_name)
    guess = naming.weight_names(stmts) if weights_out is not None else None
    return saving.publish(source, spec_out, weights_out, lambda: _imported(source, stmts, net_name), guess)


MAX_STOPS = 32  # how far back --partial looks for a part the language expresses


def _statements(source: Source, partial: bool) -> list[Stmt]:
    """The model's statements; with ``partial``, those up to the node nearest the output that the
    language cannot express (its input becomes the output, and ``source.partial`` says so)."""
    first, seen = None, set()
    for _ in range(MAX_STOPS):
        try:
            layers, output = lift(source)
            return build(source, layers, output)
        except ImportModelError as exc:
            stop = getattr(exc, "stop", None)
            if not partial or stop is None or stop == source.input or stop in seen:
                raise (exc if first is None else first) from None
            first = first or exc
            seen.add(stop)
            shape = source.shape(stop)
            dims = "x".join(str(d) for d in shape[1:]) if shape else "shape unknown"
            node, why = exc.message.split(": ", 1) if ": " in exc.message else (exc.message, "")
            source.outputs = [stop]
            source.partial = (f"only the part before {node}, which cnndsl cannot express ({why}).\nIts output is "
                              f"that node's input '{printable(stop)}' ({dims}); the rest of the model is not in this "
                              "spec.")
    raise first


def _imported(source: Source, stmts: list[Stmt], net_name: str) -> Imported:
    """The spec of the statements, proven to be the model (see the module's docstring)."""
    notes: list[str] = []
    kinds = _layer_kinds()
    bodies = []
    if naming.meaningful(stmts):
        bodies.append((naming.label(_clone(stmts)), True))
    else:
        example = next((w.source for s in stmts for layer in s.layers() for w in layer.weights.values()), "")
        notes.append(f"the model's weight names are not module names (e.g. '{printable(example)}'): the spec's "
                     "layers are named by cnndsl's indices, and its groups by the model's residual blocks and "
                     "branches")
    bodies.append((naming.structure(stmts), False))
    problem = None
    for body, keep in bodies:
        name_skips(body, source.input, source.path)  # a block may take a skip's label as a parameter
        try:
            imported, graph = _verified(source, body, _plain(source, body, net_name), keep, notes)
        except _Mismatch as exc:
            problem = problem or exc
            continue
        if keep is False and len(bodies) > 1:
            notes.append(f"the model's weight names could not all be kept ({problem}); the spec's layers are "
                         "named by cnndsl's indices")
        elif keep and not imported.names_kept:
            odd = [layer for s in body for layer in s.layers() if layer.weights and naming.module_path(layer) is None]
            shown = ", ".join(f"'{printable(w.source)}'" for w in odd[0].weights.values())
            notes.append(f"{len(odd)} layers' weights do not share a module name (e.g. {shown}): those layers are "
                         "named by cnndsl's indices")
        result = factor(_clone(body), source, kinds)
        if result.blocks:
            try:
                text = _spec_text(source, result, net_name)
                factored, fgraph = _verified(source, result.stmts, text, keep, notes)
                _same(fgraph, graph)
                return factored
            except _Mismatch as exc:
                notes.append(f"the spec is written without blocks: factoring it went wrong ({exc})")
        try:  # the plain spec is written: its text is proven as the factored one's would be
            return _verified(source, body, _spec_text(source, Factored(body), net_name), keep, notes)[0]
        except _Mismatch as exc:
            problem = problem or exc
    raise ImportModelError(f"import made a spec that is not the model: {problem}", path=source.path,
                           hint="this is a bug in cnndsl import; please report it with the model")


def _clone(stmts: list[Stmt]) -> list[Stmt]:
    """A copy of the statements (not of their layers, which factoring copies before it changes one)."""
    out = []
    for s in stmts:
        t = copy.copy(s)
        t.branches = [_clone(b) for b in s.branches]
        t.shortcut = _clone(s.shortcut) if s.shortcut is not None else None
        t.shown = _clone(s.shown) if s.shown is not None else None
        out.append(t)
    return out


def _same(graph, plain) -> None:
    """Whether the factored spec expands to exactly the layers of the plain one."""
    a, b = graph.nodes, plain.nodes
    if len(a) != len(b):
        raise _Mismatch(f"{len(a)} layers, not {len(b)}")
    for x, y in zip(a, b, strict=True):
        if (x.name, x.kind, _unfused(x.layer), x.inputs, x.out_shape) != \
                (y.name, y.kind, _unfused(y.layer), y.inputs, y.out_shape):
            raise _Mismatch(f"'{x.name}' ({x.kind}) differs from '{y.name}' ({y.kind})")


def _unfused(layer):
    """A layer without the record of an activation written on its line (`conv 16 3x3 hardswish`):
    the activation is a node of its own either way, compared as such."""
    if getattr(layer, "act", None) is not None and dataclasses.is_dataclass(layer):
        return dataclasses.replace(layer, act=None)
    return layer


def _layer_kinds() -> set[str]:
    from cnndsl.layers import REGISTRY

    return set(REGISTRY)


class _Mismatch(Exception):
    pass


def _network_name(name: str | None, path: str) -> str:
    if name is not None:
        if not naming.NAME.match(name):
            raise ImportModelError(f"'{printable(name)}' is not a network name", path=path,
                                   hint="a name is letters, digits and underscores, not starting with a digit")
        return name
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0]) or "imported"
    return stem if not stem[0].isdigit() else "net_" + stem


def _spec_text(source: Source, result: Factored, name: str, canonical: bool = True) -> str:
    from cnndsl.api import format_spec

    shape = "x".join(str(d) for d in source.input_shape)
    made = f" by {source.producer}" if source.producer else ""
    head = [f"# Imported by `cnndsl import` from {os.path.basename(source.path)} (made{made}, opset {source.opset}, "
            f"{source.node_count:,} nodes).",
            *([f"# PARTIAL: {line}" for line in source.partial.splitlines()] if source.partial else []),
            f"network {name}", f"input {shape}", ""]
    name_skips(result.stmts, source.input, source.path)
    blocks = [line for b in result.blocks for line in block_lines(b.name, b.params, b.body)]
    text = "\n".join(head + blocks + lines(result.stmts)) + "\n"
    if not canonical:
        return text
    try:
        return format_spec(text)
    except CnnDslError as exc:
        raise _Mismatch(f"the spec does not parse: {exc.message}") from None


def _plain(source: Source, body: list[Stmt], name: str):
    """The plain spec to prove: its syntax, or its text where that cannot be built (see importer.plain)."""
    try:
        return plain_spec(body, name, source.input_shape, _where(source))
    except Unwritten:
        return _spec_text(source, Factored(body), name, canonical=False)


def _where(source: Source) -> str:
    return f"<imported {os.path.basename(source.path)}>"


def _verified(source: Source, body: list[Stmt], spec, keep: bool, notes: list[str]):
    """Check the spec (its text, or syntax: importer.plain) with cnndsl and pair each weighted layer
    with the node the checker made for it."""
    from cnndsl.api import Network, parse
    from cnndsl.model.check import check

    try:
        net = parse(spec, _where(source)) if isinstance(spec, str) else Network(check(spec))
    except CnnDslError as exc:
        raise _Mismatch(f"the spec does not check: {exc.message}") from None
    mine: list[Layer] = [layer for s in body for layer in s.layers() if layer.weights]
    theirs = [n for n in net.graph.nodes if n.params]
    if len(mine) != len(theirs):
        raise _Mismatch(f"{len(mine)} layers with weights in the model, {len(theirs)} in the spec")
    weights: dict[str, tuple[Weight, tuple[int, ...]]] = {}
    kept = True
    for layer, node in zip(mine, theirs, strict=True):
        params = {p.name: p for p in node.params}
        for role, w in layer.weights.items():
            spec_name = f"{node.name}.{role}" if role else node.name
            p = params.get(spec_name)
            if p is None or tuple(p.shape) != tuple(w.shape):
                raise _Mismatch(f"{layer.op.where()}: '{spec_name}' is not a weight of shape {w.shape} in the spec")
            weights[spec_name] = (w, tuple(p.shape))
        path = naming.module_path(layer)
        if keep and path is not None and node.name != path:
            raise _Mismatch(f"'{node.name}' is named '{path}' in the model")
        kept = kept and node.name == path
        if len(params) != len(layer.weights):
            raise _Mismatch(f"{layer.op.where()}: the spec's '{node.name}' has weights {sorted(params)}")
    want = source.shape(source.outputs[0])
    got = net.graph.output_shape
    if want is not None and all(isinstance(d, int) for d in want[1:]) and tuple(want[1:]) != tuple(got):
        raise _Mismatch(f"the model's output is {want[1:]} per sample, the spec's {got}")
    for layer, node in zip(mine, theirs, strict=True):
        want = source.shape(layer.output)
        if want is not None and layer.nhwc and len(want) == 4:
            want = (want[0], want[3], want[1], want[2])
        if want is not None and all(isinstance(d, int) for d in want[1:]) and tuple(want[1:]) != node.out_shape:
            raise _Mismatch(f"{layer.op.where()} gives {want[1:]} per sample; the spec's '{node.name}' "
                            f"{node.out_shape}")
    text = spec if isinstance(spec, str) else ""  # (the plain spec's text is written only where it is proven)
    return Imported(text, source, weights, kept, net.totals.params, notes), net.graph
