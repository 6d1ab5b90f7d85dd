"""Naming the tensor a `from` goes on from, as the checker will resolve it.

The statements are walked as the checker walks the spec: each statement takes its label or the
next index in its scope (a fused activation the index after), a group, block call, gate or
labelled join opens a scope named by it, `_` and unlabelled joins do not, and a label names the
statement's output after its fused activation. A `from` is given the shortest name that the
checker's lookup (the statement's scope, then each enclosing one) finds for its tensor at that
point; where none does, import fails rather than write a skip to another tensor.
"""

from __future__ import annotations

from cnndsl.errors import ImportModelError
from cnndsl.importer.text import fuses
from cnndsl.importer.tree import Stmt
from cnndsl.lang.show import printable


def name_skips(stmts: list[Stmt], input_name: str, path: str) -> None:
    """Give each `from` statement (``args``: ``["@REF"]``) a reference that finds its tensor
    (one named already, such as a block's parameter, stays)."""
    if any(s.kind == "from" and not s.args for s in _all(stmts)):
        _Walker(input_name, path).seq(stmts, "")


def _all(stmts: list[Stmt]):
    for s in stmts:
        yield s
        for branch in s.branches:
            yield from _all(branch)
        yield from _all(s.shortcut or [])


def output_of(s: Stmt) -> str | None:
    """The tensor a statement makes (None for a placeholder `identity`)."""
    if s.layer is not None:
        return s.layer.output
    for x in reversed(s.body if s.branches else []):
        out = output_of(x)
        if out is not None:
            return out
    return None


class _Walker:
    def __init__(self, input_name: str, path: str) -> None:
        self.tensors: dict[str, str] = {}  # a full name -> the tensor it names
        self.index: dict[str, int] = {}  # a scope's prefix -> its next index
        self.input = input_name
        self.path = path

    def next(self, prefix: str, label: str | None) -> str:
        k = self.index.get(prefix, 0)
        self.index[prefix] = k + 1
        name = label if label is not None else str(k)
        return f"{prefix}.{name}" if prefix else name

    def seq(self, stmts: list[Stmt], prefix: str) -> None:
        k = 0
        while k < len(stmts):
            s = stmts[k]
            nxt = stmts[k + 1] if k + 1 < len(stmts) else None
            if fuses(s, nxt):
                name = self.next(prefix, s.label)
                self.next(prefix, None)
                self.tensors[name] = nxt.layer.output
                k += 2
                continue
            self.one(s, prefix)
            k += 1

    def one(self, s: Stmt, prefix: str) -> None:
        if s.kind == "from":
            if not s.args:
                s.args = ["@" + self.reference(s.start, prefix)]
            return
        if s.kind == "layer":
            name = self.next(prefix, s.label)
            if s.layer is not None:
                self.tensors[name] = s.layer.output
            return
        if s.kind == "if" or s.kind == "group" and s.label == "_":
            self.seq(s.body, prefix)
            return
        if s.kind in ("concat", "add", "mul", "residual") and s.label is None:
            self.branches(s, prefix)
            return
        if s.kind == "repeat" and s.label is None:
            for copy in s.body:
                self.one(copy, prefix)
            return
        name = self.next(prefix, s.label)
        if s.kind in ("group", "call", "repeat", "gate") and s.shown is None:
            self.seq(s.body, name)
        elif s.kind in ("concat", "add", "mul", "residual"):
            self.branches(s, name)
        out = output_of(s)
        if out is not None:
            self.tensors[name] = out

    def branches(self, s: Stmt, prefix: str) -> None:
        for branch in s.branches:
            self.seq(branch, prefix)
        if s.shortcut:
            self.seq(s.shortcut, f"{prefix}.{s.shortcut_name or 'shortcut'}" if prefix else "shortcut")

    def reference(self, tensor: str, prefix: str) -> str:
        scopes = prefix.split(".") if prefix else []
        found = []
        for name, t in self.tensors.items():
            if t == tensor and self.lookup(name, scopes) == tensor:
                found.append(name)
            for k in range(1, len(scopes) + 1):  # a name relative to an enclosing scope
                head = ".".join(scopes[:k]) + "."
                if t == tensor and name.startswith(head) and self.lookup(name[len(head):], scopes) == tensor:
                    found.append(name[len(head):])
        if found:
            return min(found, key=lambda n: (len(n.split(".")), len(n)))
        if tensor == self.input and self.lookup("input", scopes) is None:
            return "input"
        raise ImportModelError(f"a skip goes on from '{printable(tensor)}', which the spec cannot name there",
                               path=self.path, hint="this is a limit of cnndsl import; please report it with the "
                               "model")

    def lookup(self, name: str, scopes: list[str]) -> str | None:
        """The tensor the checker finds for ``name`` from the scope ``scopes``."""
        for k in range(len(scopes), -1, -1):
            full = ".".join([*scopes[:k], name])
            if full in self.tensors:
                return self.tensors[full]
        return None
