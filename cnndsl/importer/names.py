"""Labels from the model's weight names, so that the imported spec names its weights as the model
did: ``layer1.0.conv1.weight`` becomes the group `layer1`, in it the group `0`, in it the layer
`conv1`. Weightless statements between the layers of one module go with it; those after the last
layer of an indexed module (the relu after a residual add) do too.

The result is checked afterwards (the spec's names must equal the model's): this module proposes,
``importer.verify`` decides.
"""

from __future__ import annotations

import re

from cnndsl.importer.tree import Stmt

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
LABEL_SAFE = re.compile(r"[A-Za-z0-9_\-]+\Z")  # what a quoted label may hold here (no holes, quotes, dots)
MIXED = object()


def module_path(layer) -> str | None:
    """The module name a layer's weights share, where labels can give it (see Layer.path)."""
    path = layer.path()
    if path is None or not all(LABEL_SAFE.match(p) for p in path.split(".")):
        return None
    return path


def meaningful(stmts: list[Stmt]) -> bool:
    """Whether most weighted layers' initializers are named `MODULE.role` with one MODULE each
    (the others, such as an exporter's 'val_12', are left to cnndsl's indices)."""
    paths = [module_path(layer) for s in stmts for layer in s.layers() if layer.weights]
    return bool(paths) and 2 * sum(p is not None for p in paths) >= len(paths)


def weight_names(stmts: list[Stmt]) -> dict | None:
    """The spec's weights as the proof names them where the spec keeps the model's names: each
    weighted layer's module name and role, in the order the checker meets the layers (name ->
    (Weight, shape)); None where a layer's weights share no module name. A guess made before the
    spec exists, so that the weights can be written meanwhile; the proof says whether it holds."""
    if not meaningful(stmts):
        return None
    out = {}
    for s in stmts:
        for layer in s.layers():
            if not layer.weights:
                continue
            path = module_path(layer)
            if path is None:
                return None
            for role, w in layer.weights.items():
                out[f"{path}.{role}" if role else path] = (w, tuple(w.shape))
    return out


JOINS = ("concat", "add", "mul", "residual", "gate")


def structure(stmts: list[Stmt]) -> list[Stmt]:
    """Groups where the model's names say nothing: each join (a residual, a concat, a gate) with
    the weightless statements after it is one unlabelled group, which factoring can make a block
    (a ResNet's residual blocks, a GoogLeNet's inception modules)."""
    out: list[Stmt] = []
    for s in stmts:
        if s.kind in JOINS:
            s.branches = [structure(b) for b in s.branches]
            if s.shortcut:
                s.shortcut = structure(s.shortcut)
            out.append(Stmt("group", branches=[[s]]))
        elif out and out[-1].kind == "group" and s.kind == "layer" and s.layer is not None and not s.layer.weights \
                and s.layer.kind not in ("flatten", "globalavgpool", "globalmaxpool"):
            out[-1].body.append(s)  # the relu after a residual add
        else:
            out.append(s)
    return out


def label(stmts: list[Stmt]) -> list[Stmt]:
    """The statements with groups and labels that give each weighted layer its model name."""
    out = _assign(stmts, "")
    _number(out)
    return out


def _rels(s: Stmt, prefix: str) -> list[str] | object:
    rels = []
    for layer in s.layers():
        if not layer.weights:
            continue
        path = module_path(layer)
        if path is None:  # a name that is not a module's: the layer goes where its neighbours go
            continue
        if prefix:
            if not path.startswith(prefix + "."):
                return MIXED
            path = path[len(prefix) + 1:]
        rels.append(path)
    return rels


def _key(s: Stmt, prefix: str):
    """The first name part all of the statement's weights share below ``prefix`` (None: it has
    none; MIXED: they differ)."""
    rels = _rels(s, prefix)
    if rels is MIXED:
        return MIXED
    firsts = {r.split(".")[0] for r in rels}
    if not firsts:
        return None
    return firsts.pop() if len(firsts) == 1 else MIXED


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _assign(stmts: list[Stmt], prefix: str) -> list[Stmt]:
    out: list[Stmt] = []
    run: list[Stmt] = []
    pending: list[Stmt] = []  # weightless statements after the run, until we know whether it goes on
    run_key = None

    def close() -> None:
        nonlocal run, run_key, pending
        if run and run_key.isdigit():  # an indexed module keeps what follows it (the relu after an add)
            run += pending
            pending = []
        else:  # a named one its last activations; pools too where it is a list (VGG's features)
            rels = [_rels(x, _join(prefix, run_key)) for x in run]
            listed = any(r.split(".")[0].isdigit() for rs in rels if rs is not MIXED for r in rs)
            while pending and _trails(pending[0], listed):
                run.append(pending.pop(0))
        if run:
            out.extend(_close(run, run_key, prefix))
        out.extend(_transparent(p, prefix) for p in pending)
        run, run_key, pending = [], None, []

    for s in stmts:
        key = _key(s, prefix)
        if isinstance(key, str) and _branch_module(s, prefix, key):
            key = MIXED
        if key is None:
            if run:
                pending.append(s)
            else:
                out.append(_transparent(s, prefix))
        elif key is MIXED:
            close()
            out.append(_transparent(s, prefix))
        elif run and run_key == key:
            run += pending + [s]
            pending = []
        else:
            close()
            first = _first_index(s, _join(prefix, key))
            while first and out and len(run) < first and _weightless(out[-1]):
                run.insert(0, out.pop())  # a pool that is module 0 of a list (GoogLeNet's branch4)
            run_key = key
            run.append(s)
    close()
    return out


def _branch_module(s: Stmt, prefix: str, key: str) -> bool:
    """Whether a join's weights all lie in one branch that is itself the module (a layer, or a
    numbered list such as ShuffleNet's `branch2`): the branch is labelled, not the join, since an
    `identity` beside it takes an index of the module's scope."""
    if s.kind not in ("concat", "add", "mul"):
        return False
    weighted = [b for b in s.branches if any(layer.weights for x in b for layer in x.layers())]
    if len(weighted) != 1:
        return False
    rels = _rels(Stmt("group", branches=[weighted[0]]), prefix)
    return rels is not MIXED and all(r == key or len(r.split(".")) == 2 and r.split(".")[1].isdigit() for r in rels)


def _first_index(s: Stmt, prefix: str) -> int:
    rels = _rels(s, prefix)
    if rels is MIXED or not rels or not rels[0].split(".")[0].isdigit():
        return 0
    return int(rels[0].split(".")[0])


def _weightless(s: Stmt) -> bool:
    """A pool or activation (not a flatten): what a module list may hold before its first weight."""
    return s.kind == "layer" and s.layer is not None and not s.layer.weights and (
        s.layer.kind in ACTIVATIONS or s.layer.kind in ("maxpool", "avgpool", "globalavgpool", "globalmaxpool"))


ACTIVATIONS = {"relu", "tanh", "sigmoid", "relu6", "hardswish", "hardsigmoid", "silu", "gelu", "leakyrelu", "elu"}


def _trails(s: Stmt, listed: bool) -> bool:
    return s.kind == "layer" and s.layer is not None and (
        s.layer.kind in ACTIVATIONS or (listed and s.layer.kind in ("maxpool", "avgpool")))


def _close(run: list[Stmt], key: str, prefix: str) -> list[Stmt]:
    weighted = [s for s in run if any(layer.weights for layer in s.layers())]
    rels = [r for s in weighted for r in _rels(s, prefix)]
    if len(weighted) == 1 and weighted[0].kind == "layer" and rels == [key]:
        weighted[0].label = key
        return run
    if len(run) == 1 and run[0].kind == "gate" and all("." in r for r in rels):
        gate = run[0]
        gate.label = key
        gate.branches = [_assign(gate.body, _join(prefix, key))]
        return [gate]
    return [Stmt("group", branches=[_assign(run, _join(prefix, key))], label=key)]


def _transparent(s: Stmt, prefix: str) -> Stmt:
    """A statement named in this scope: a join's branches are labelled here, a residual's
    shortcut in its own scope."""
    if s.kind in ("concat", "add", "mul", "residual"):
        branches = []
        for branch in s.branches:
            inner = _assign(branch, prefix)
            splice = len(inner) > 1 and s.kind != "residual"  # a residual's body is a sequence, not a branch list
            branches.append([Stmt("group", branches=[inner], label="_")] if splice else inner)
        s.branches = branches
        if s.shortcut:
            key = _key(Stmt("group", branches=[s.shortcut]), prefix)
            if isinstance(key, str) and key is not MIXED:
                s.shortcut_name = key
                s.shortcut = _assign(s.shortcut, _join(prefix, key))
    elif s.kind == "gate":
        s.branches = [_assign(s.body, prefix)]
    return s


def _number(stmts: list[Stmt]) -> None:
    """Drop labels that are the index the statement gets anyway; fill index gaps (modules
    without weights the export left out, such as dropout) with `identity`."""
    _Counter().scope(stmts)


class _Counter:
    def scope(self, stmts: list[Stmt]) -> None:
        self.index = 0
        self.walk(stmts)

    def walk(self, stmts: list[Stmt]) -> None:
        k = 0
        while k < len(stmts):
            s = stmts[k]
            if s.label is not None and s.label.isdigit():
                want = int(s.label)
                if want > self.index:
                    gap = want - self.index
                    stmts[k:k] = [Stmt("layer", label=None, name="identity") for _ in range(gap)]
                    self.index += gap
                    k += gap
                if want == self.index:
                    s.label = None
            self.one(s)
            k += 1

    def one(self, s: Stmt) -> None:
        if s.kind == "from":  # goes on from a tensor; names nothing
            return
        if s.kind == "if":  # its statements are named in the scope it is written in
            self.walk(s.body)
            return
        if s.kind == "group" and s.label == "_":
            self.walk(s.body)
            return
        if s.kind in ("concat", "add", "mul", "residual") and s.label is None:
            for branch in s.branches:
                self.walk(branch)
            if s.shortcut:
                _Counter().scope(s.shortcut)
            return
        self.index += 1
        inner = _Counter()
        inner.index = 0
        for branch in s.branches:  # a group's or gate's body, a labelled join's branches: one scope
            inner.walk(branch)
        if s.shortcut:
            _Counter().scope(s.shortcut)
