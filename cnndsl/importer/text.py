"""Writing statements as spec text (then put in canonical form by `fmt`)."""

from __future__ import annotations

import re

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
    text = _block(f"block {name}({shown})", body, 0)
    if len(body) == 1 and len(text) > 3 and text[1].strip().endswith("{") and text[-2].strip() == "}" \
            and text[-2] == "  }":  # one statement: `block inception(c) { concat {` ... `} }`
        text = [f"{text[0]} {text[1].strip()}", *text[2:-2], "} }"]
    return [*text, ""]


def lines(stmts: list[Stmt], indent: int = 0, pack: bool = True) -> list[str]:
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
    return _calls_in_a_row(out, pad) if pack else out


CALL = re.compile(r'(?:"[^"]*"|\w+): (\w+) [^;{}#]*\Z')


def _calls_in_a_row(out: list[str], pad: str) -> list[str]:
    """Three or more labelled calls of one block in a row on one line where they fit, as a table
    would list them (`Mixed_5b: inception_a 32; Mixed_5c: inception_a 64; Mixed_5d: inception_a 64`)."""
    runs: list[list[str]] = []
    for line in out:
        m = CALL.match(line.strip())
        name = m.group(1) if m else None
        if name is not None and runs and runs[-1][0] == name:
            runs[-1].append(line)
        else:
            runs.append([name, line])
    packed: list[str] = []
    for name, *members in runs:
        if name is None or len(members) < 3:
            packed += members
            continue
        current = members[0]
        for line in members[1:]:
            if len(current) + 2 + len(line.strip()) <= ONE_LINE:
                current += "; " + line.strip()
            else:
                packed.append(current)
                current = line
        packed.append(current)
    return packed


def fused(stmts: list[Stmt]) -> list[tuple[Stmt, str | None]]:
    """The statements as they are written, each with the activation it takes as its last word: a
    conv or dense followed by a bare activation is one statement (`conv 64 3x3 relu`)."""
    out: list[tuple[Stmt, str | None]] = []
    k = 0
    while k < len(stmts):
        s = stmts[k]
        nxt = stmts[k + 1] if k + 1 < len(stmts) else None
        if fuses(s, nxt):
            out.append((s, nxt.layer.kind))
            k += 2
        else:
            out.append((s, None))
            k += 1
    return out


WEIGHTED = {"conv", "convtranspose", "dense", "linear"}


def _joined(units: list[tuple[list[str], bool]], stmts: list[Stmt]) -> list[tuple[list[str], bool]]:
    """A conv (or dense) line with the batchnorm and activation after it on one line, separated by
    `;`, as the shipped specs write them (`conv1: conv 64 1x1 bias=false; bn1: batchnorm; relu`);
    an `identity` that only keeps a left-out module's index on the line before it."""
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
        if line == "identity" and prev and not prev.strip().startswith("repeat") and _whole(prev.strip()):
            out[-1] = ([f"{prev}; identity"], False)  # a module the export left out (a folded batchnorm)
            continue
        out.append((text, simple))
    return out


def fuses(s: Stmt, nxt: Stmt | None) -> bool:
    """Whether the statement is written with the activation after it on its line (`conv 64 3x3
    relu`), so that its label names the activation's output."""
    return s.kind == "layer" and s.layer is not None and s.layer.kind in FUSABLE and nxt is not None \
        and _bare_activation(nxt) and not s.layer.referenced


def _bare_activation(s: Stmt) -> bool:
    return s.kind == "layer" and s.layer is not None and s.label is None and s.layer.kind in ACTIVATIONS \
        and not s.layer.args


ONE_LINE = 110  # a group of a few statements is written on one line where it fits (as the shipped specs do)


def _fill(first: str, parts: list[str], pad: str) -> list[str]:
    """``parts`` joined by `; ` in lines of at most ONE_LINE, the first after ``first``, and a
    closing brace at the end."""
    out, line = [], first
    for k, part in enumerate(parts):
        piece = part + (" }" if k == len(parts) - 1 else "")
        if line.strip() not in ("", "{") and not line.endswith("{ ") and len(line) + 2 + len(piece) > ONE_LINE:
            out.append(line)
            line = pad + piece
        else:
            line += ("" if line.endswith("{ ") or line == pad else "; ") + piece
    out.append(line)
    return out


def _whole(line: str) -> bool:
    """Whether a line is whole statements (its braces close on it), so it can join another's."""
    depth = 0
    for ch in line:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and "#" not in line


def _block(head: str, body: list[Stmt], indent: int, tail: str = "}") -> list[str]:
    pad = "  " * indent
    inner = lines(body, indent + 1)
    simple = [line.strip() for line in lines(body, indent + 1, pack=False)]
    one = f"{pad}{head} {{ {'; '.join(simple)} }}".replace("  {", " {") if head else \
        f"{pad}{{ {'; '.join(simple)} }}"
    if tail == "}" and all(_whole(x) for x in simple):
        if len(inner) <= 3 and len(one) <= ONE_LINE:
            return [one]
        if all(label_text(x.label) and x.kind in ("layer", "call") for x in body):  # named modules: filled lines
            filled = _fill(f"{pad}{head} {{ " if head else f"{pad}{{ ", simple, pad + "  ")
            if len(filled) < len(inner) + 2:
                return filled
    return [f"{pad}{head} {{", *inner, f"{pad}{tail}"]  # (a tail that opens a shortcut: never one line)


def _one(s: Stmt, indent: int) -> list[str]:
    pad = "  " * indent
    lab = label_text(s.label)
    if s.kind == "layer":
        return [f"{pad}{lab}{s.layer.text() if s.layer is not None else s.name}"]
    if s.kind == "from":  # args: ["@REF"]
        return [f"{pad}from {s.args[0][1:]}"]
    if s.kind == "call":
        return [f"{pad}{lab}{' '.join([s.name, *s.args])}"]
    if s.kind == "repeat" and s.name:  # copies labelled by their number: `repeat N as i { "x{i+1}": ... }`
        copy = Stmt(**{**s.body[0].__dict__, "label": None})
        first = _one(copy, indent + 1)
        first[0] = f'{pad}  "{s.name}": {first[0].strip()}'
        one = f"{pad}{lab}repeat {s.args[0]} as i {{ {first[0].strip()} }}"
        if len(first) == 1 and len(one) <= ONE_LINE:
            return [one]
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
        if s.label not in (None, "_") and len(body) == 1 and body[0].kind in ("concat", "add", "mul") \
                and body[0].label is None:  # a labelled join opens the same scope as a group around it
            return _one(Stmt(**{**body[0].__dict__, "label": s.label}), indent)
        return _block(lab.rstrip(), body, indent)
    if s.kind == "gate":
        return _block(f"{lab}gate", s.body, indent)
    if s.kind == "if":  # a block's statement some of its calls leave out
        return _block(f"if {s.cond}", s.body, indent)
    if s.kind == "residual":
        head = f"{lab}residual" + (f" if {s.cond}" if s.cond else "")
        if not s.shortcut:
            return _block(head, s.body, indent)
        name = f" {s.shortcut_name}" if s.shortcut_name else ""
        return [*_block(head, s.body, indent, tail=f"}} shortcut{name} {{"), *lines(s.shortcut, indent + 1),
                f"{pad}}}"]
    # concat, add, mul: one statement per branch, a group for several, identity for none
    head = f"{pad}{lab}{' '.join([s.kind, *s.args])} {{"
    out = []
    for branch in s.branches:
        if not branch:
            out.append(f"{pad}  identity")
        elif len(branch) == 1:
            out.extend(lines(branch, indent + 1))
        else:
            out.extend(_block("", branch, indent + 1))
    one = f"{head} {'; '.join(x.strip() for x in out)} }}"
    if len(out) <= 3 and len(out) == len(s.branches) and all(_whole(x.strip()) for x in out) and len(one) <= ONE_LINE:
        return [one]  # `concat { a: conv 64 1x3; b: conv 64 3x1 }`
    return [head, *out, f"{pad}}}"]
