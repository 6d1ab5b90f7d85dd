"""Writing statements as spec text (then put in canonical form by `fmt`)."""

from __future__ import annotations

from cnndsl.importer.names import NAME
from cnndsl.importer.tree import Stmt

FUSABLE = {"conv", "dense", "convtranspose"}  # kinds that take an activation word
ACTIVATIONS = {"relu", "tanh", "sigmoid", "relu6", "hardswish", "hardsigmoid", "silu", "gelu", "leakyrelu", "elu"}


def label_text(label: str | None) -> str:
    if label is None:
        return ""
    return f"{label}: " if NAME.match(label) else f'"{label}": '


def block_lines(name: str, params: list[tuple[str, object]], body: list[Stmt]) -> list[str]:
    """A block definition."""
    shown = ", ".join(p if default is None else f"{p}={default}" for p, default in params)
    return [f"block {name}({shown}) {{", *lines(body, 1), "}", ""]


def lines(stmts: list[Stmt], indent: int = 0) -> list[str]:
    """The statements as lines of text: a fused activation written after its conv or dense, and
    equal unlabelled layers in a row as one `repeat` (its copies take the same indices)."""
    units: list[tuple[list[str], bool]] = []  # (lines, whether a repeat may take it)
    pad = "  " * indent
    for s, act in fused(stmts):
        if act is not None:
            units.append(([f"{pad}{label_text(s.label)}{s.layer.text()} {act}"], s.label is None))
        else:
            units.append((_one(s, indent), s.kind == "layer" and s.label is None and s.layer is not None))
    units = _joined(units, stmts)
    out: list[str] = []
    k = 0
    while k < len(units):
        text, simple = units[k]
        n = 1
        while simple and k + n < len(units) and units[k + n] == units[k]:
            n += 1
        out += [f"{pad}repeat {n} {text[0].strip()}"] if n > 1 else text
        k += n
    return out


def fused(stmts: list[Stmt]) -> list[tuple[Stmt, str | None]]:
    """The statements as they are written, each with the activation it takes as its last word: a
    conv or dense followed by a bare activation is one statement (`conv 64 3x3 relu`)."""
    out: list[tuple[Stmt, str | None]] = []
    k = 0
    while k < len(stmts):
        s = stmts[k]
        nxt = stmts[k + 1] if k + 1 < len(stmts) else None
        if s.kind == "layer" and s.layer is not None and s.layer.kind in FUSABLE and nxt is not None \
                and _bare_activation(nxt):
            out.append((s, nxt.layer.kind))
            k += 2
        else:
            out.append((s, None))
            k += 1
    return out


WEIGHTED = {"conv", "convtranspose", "dense", "linear"}


def _joined(units: list[tuple[list[str], bool]], stmts: list[Stmt]) -> list[tuple[list[str], bool]]:
    """A conv (or dense) line with the batchnorm and activation after it on one line, separated by
    `;`, as the shipped specs write them (`conv1: conv 64 1x1 bias=false; bn1: batchnorm; relu`)."""
    out: list[tuple[list[str], bool]] = []
    for text, simple in units:
        line = text[0].strip() if len(text) == 1 else ""
        words = line.split(": ", 1)[-1].split()
        kind = words[0] if words else ""
        prev = out[-1][0][0] if out and len(out[-1][0]) == 1 else ""
        head = prev.strip().split(": ", 1)[-1].split()
        parts = prev.count("; ")
        if line and prev and head and head[0] in WEIGHTED and parts < 2 and not line.startswith("repeat") \
                and (kind == "batchnorm" and parts == 0 or kind in ACTIVATIONS and len(words) == 1
                     and (parts == 0 or "batchnorm" in prev.split("; ")[-1])):
            out[-1] = ([f"{prev}; {line}"], False)
            continue
        out.append((text, simple))
    return out


def _bare_activation(s: Stmt) -> bool:
    return s.kind == "layer" and s.layer is not None and s.label is None and s.layer.kind in ACTIVATIONS \
        and not s.layer.args


def _block(head: str, body: list[Stmt], indent: int, tail: str = "}") -> list[str]:
    pad = "  " * indent
    return [f"{pad}{head} {{", *lines(body, indent + 1), f"{pad}{tail}"]


def _one(s: Stmt, indent: int) -> list[str]:
    pad = "  " * indent
    lab = label_text(s.label)
    if s.kind == "layer":
        return [f"{pad}{lab}{s.layer.text() if s.layer is not None else s.name}"]
    if s.kind == "call":
        return [f"{pad}{lab}{' '.join([s.name, *s.args])}"]
    if s.kind == "repeat" and s.name:  # copies labelled by their number: `repeat N as i { "x{i+1}": ... }`
        copy = Stmt(**{**s.body[0].__dict__, "label": None})
        first = _one(copy, indent + 1)
        first[0] = f'{pad}  "{s.name}": {first[0].strip()}'
        return [f"{pad}{lab}repeat {s.args[0]} as i {{", *first, f"{pad}}}"]
    if s.kind == "repeat":  # its copies are all alike: the text is the first
        first = s.body[0]
        if first.kind in ("layer", "call") and first.label is None:
            return [f"{pad}{lab}repeat {s.args[0]} {_one(first, 0)[0]}"]
        return _block(f"{lab}repeat {s.args[0]}", [first], indent)
    if s.kind == "group" and s.label not in (None, "_") and len(s.body) == 1 and s.body[0].kind == "repeat" \
            and s.body[0].label is None:  # a labelled repeat opens the same scope as a group around it
        inner = s.body[0]
        return _one(Stmt("repeat", branches=inner.branches, args=inner.args, label=s.label, name=inner.name), indent)
    if s.kind == "group":
        body = s.shown if s.shown is not None else s.body
        return _block(lab.rstrip(), body, indent)
    if s.kind == "gate":
        return _block(f"{lab}gate", s.body, indent)
    if s.kind == "residual":
        head = _block(f"{lab}residual" + (f" if {s.cond}" if s.cond else ""), s.body, indent)
        if s.shortcut:
            name = f" {s.shortcut_name}" if s.shortcut_name else ""
            head[-1] = f"{pad}}} shortcut{name} {{"
            head += [*lines(s.shortcut, indent + 1), f"{pad}}}"]
        return head
    # concat, add, mul: one statement per branch, a group for several, identity for none
    out = [f"{pad}{lab}{s.kind} {{"]
    for branch in s.branches:
        if not branch:
            out.append(f"{pad}  identity")
        elif len(branch) == 1:
            out.extend(lines(branch, indent + 1))
        else:
            out.extend(_block("", branch, indent + 1))
    out.append(f"{pad}}}")
    return out
