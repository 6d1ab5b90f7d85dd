"""Factoring like a person: groups that differ only in numbers become calls of one parameterised
block, and consecutive equal calls a `repeat`.

Innermost groups first: each round takes the groups whose bodies hold no unfactored group, buckets
them by skeleton (the body with every number blanked out), and makes a block of each bucket of
two or more. A number the instances share stays a literal; one that varies becomes a parameter,
or an expression of an earlier one (`c*4`, `c//2`) or of `in_channels` where it always is one.
A residual whose projection only some instances have (ResNet's first block of a stage) is one
block: the language uses the projection exactly where the shape changes, as the model did.
Then runs of equal calls become repeats, and the next round sees the groups around them.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field

from cnndsl.importer.load import Source
from cnndsl.importer.tree import Stmt
from cnndsl.importer.values import float_text

NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
ARG = re.compile(rf"(?P<key>\w+=)?(?:(?P<num>{NUMBER})|(?P<size>\d+)x(?P<size2>\d+))\Z")
OPTION_PARAMS = {"stride", "groups", "pad", "dilation", "eps", "alpha", "beta", "k", "act"}
JOINS = ("concat", "add", "mul", "residual", "gate")
RESERVED = {"residual", "concat", "gate", "repeat", "block", "network", "input", "variant", "shortcut", "add", "mul",
            "from", "output", "if", "else", "as", "split", "crop", "train", "true", "false", "none", "and", "or",
            "not", "in_channels", "in_height", "in_width"}


# options written out while factoring, so that `conv 64 3x3` and `conv 64 3x3 stride=2` are one
# skeleton with a stride parameter; left out again where they are the default
EXPLICIT = {"conv": [("stride", 1), ("pad", 0), ("groups", 1)], "maxpool": [("pad", 0)], "avgpool": [("pad", 0)]}


ORDER = ["stride", "pad", "dilation", "groups", "bias"]


def _arg_order(arg: str) -> tuple:
    """Positional arguments (numbers, sizes, words) first as written, then options in one order."""
    if "=" not in arg:
        return (0, 0, "")
    key = arg.split("=")[0]
    return (1, ORDER.index(key) if key in ORDER else len(ORDER), key)


def _shown(stmts: list[Stmt]):
    """The statements as written: a repeat's first copy, a call without its expansion."""
    for s in stmts:
        yield s
        if s.kind == "call":
            continue
        if s.kind == "repeat":
            yield from _shown(s.body[:1])
            continue
        if s.shown is not None:
            yield from _shown(s.shown)
            continue
        for b in s.branches:
            yield from _shown(b)
        yield from _shown(s.shortcut or [])


IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _bind(block: Block, args: list[str]) -> dict[str, str]:
    """A call's value of each of the block's parameters (as text)."""
    values = {p: _fmt(d) for p, d in block.params if d is not None}
    positional = [p for p, d in block.params if d is None]
    k = 0
    for a in args:
        if "=" in a and IDENT.fullmatch(a.split("=")[0]):
            key, value = a.split("=", 1)
            values[key] = value
        else:
            values[positional[k]] = a
            k += 1
    return values


def _subst_text(text: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        v = values.get(m.group(0))
        if v is None:
            return m.group(0)
        return v if re.fullmatch(r"[\w.]+", v) else f"({v})"

    return IDENT.sub(one, text)


def _subst_arg(arg: str, values: dict[str, str]) -> str:
    if "=" in arg and IDENT.fullmatch(arg.split("=")[0]):
        key, value = arg.split("=", 1)
        return f"{key}={_subst_text(value, values)}"
    return _subst_text(arg, values)


def _substitute(s: Stmt, values: dict[str, str]) -> Stmt:
    """A copy of a block's statement with its parameters replaced by a call's values."""
    t = copy.copy(s)
    if s.kind == "layer" and s.layer is not None:
        t.layer = copy.copy(s.layer)
        t.layer.args = [_subst_arg(a, values) for a in s.layer.args]
    t.args = [_subst_arg(a, values) for a in s.args]
    t.cond = _subst_text(s.cond, values) if s.cond else s.cond
    if s.kind == "call":
        return t
    t.branches = [[_substitute(x, values) for x in b] for b in s.branches]
    t.shortcut = [_substitute(x, values) for x in s.shortcut] if s.shortcut else s.shortcut
    t.shown = [_substitute(x, values) for x in s.shown] if s.shown is not None else None
    return t


ACTIVATION_KINDS = {"relu", "tanh", "sigmoid", "relu6", "hardswish", "hardsigmoid", "silu", "gelu", "leakyrelu",
                    "elu"}


def _is_act(s: Stmt) -> bool:
    """An activation statement without arguments: its kind may become a block parameter (`act`)."""
    return s.kind == "layer" and s.layer is not None and s.layer.kind in ACTIVATION_KINDS and not s.layer.args \
        and s.label is None


def _unwrap(body: list[Stmt]) -> tuple[list[Stmt], bool]:
    """A body that is one residual without a projection: its body, True; otherwise itself, False."""
    if len(body) == 1 and body[0].kind == "residual" and not body[0].shortcut and body[0].label is None \
            and body[0].cond is None:
        return body[0].body, True
    return body, False


def _inner(g: Stmt) -> tuple[str | None, list[Stmt]]:
    """A group that holds one labelled group and nothing else (MobileNet's `features.4` around
    its `block`): that label and the inner body, so both are one block; else (None, its body)."""
    if len(g.body) == 1 and g.body[0].kind == "group" and g.body[0].label not in (None, "_") \
            and not getattr(g.body[0], "final", False):
        return g.body[0].label, g.body[0].body
    return None, g.body


def _walk(stmts: list[Stmt]):
    for s in stmts:
        yield s
        if s.kind == "call":
            continue
        for b in s.branches:
            yield from _walk(b)
        yield from _walk(s.shortcut or [])


@dataclass
class Token:
    """A number in an argument: ``key=`` (or ''), its value, and whether it is a square size."""

    key: str
    value: float | int | str | tuple
    size: bool = False
    role: str = ""  # a name for a parameter that takes it ("n" for a repeat's count)


@dataclass
class Block:
    """A block definition: its name, parameters (name, default or None) and body template."""

    name: str
    params: list[tuple[str, object]]
    body: list[Stmt]  # statements whose arguments are already text with the parameters
    calls: int = 0


@dataclass
class _Param:
    name: str
    values: list  # one per instance (None where the instance has no such number)
    default: object = None
    option: bool = False
    free: set[int] = field(default_factory=set)  # instances whose value is unused (a statement they lack)


@dataclass
class Factored:
    stmts: list[Stmt]
    blocks: list[Block] = field(default_factory=list)


def factor(stmts: list[Stmt], source: Source, kinds: set[str]) -> Factored:
    """Blocks and repeats for ``stmts`` (whose layers' ``args`` are text). ``kinds`` are the words a
    block may not be named (layer kinds)."""
    f = _Factorer(source, kinds)
    out = f.run(stmts)
    return Factored(out, f.blocks)


def _tokens(arg: str) -> tuple[str, Token | None]:
    """An argument's skeleton, and its number where it has one (or its activation: `act=relu`)."""
    m = ARG.match(arg)
    if m is None:
        if arg.startswith("@") and IDENT.fullmatch(arg[1:]):  # a `from`'s label: a block may take it
            return "@#", Token("@", arg[1:], role="skip")
        if arg.startswith("act=") and arg[4:] in ACTIVATION_KINDS | {"none"}:
            return "act=#", Token("act=", arg[4:], role="act")
        return arg, None
    key = m.group("key") or ""
    if m.group("num") is not None:
        text = m.group("num")
        value = float(text) if any(c in text for c in ".e") else int(text)
        return f"{key}#", Token(key, value)
    shape = f"{key}#" if key else "#x"  # `pad=2` and `pad=0x3` alike
    if m.group("size") != m.group("size2"):  # `1x7`: a value of its own, passed as written
        return shape, Token(key, (int(m.group("size")), int(m.group("size2"))), size=True)
    return shape, Token(key, int(m.group("size")), size=True)


def _args(s: Stmt) -> list[str]:
    if s.kind == "layer":
        return s.layer.args if s.layer is not None else []
    return s.args


def skeleton(s: Stmt, with_shortcut: bool = True) -> tuple:
    """The statement with its numbers blanked out (a hashable tuple)."""
    kind = s.layer.kind if s.layer is not None and s.kind == "layer" else s.name
    head = (s.kind, s.label, "ACT" if _is_act(s) else kind, tuple(_tokens(a)[0] for a in _args(s)), s.cond)
    if s.kind == "call":
        return head
    if s.kind == "repeat":
        return (*head, skeleton(s.body[0], with_shortcut))
    branches = tuple(tuple(skeleton(x, with_shortcut) for x in b) for b in s.branches)
    shortcut = None
    if s.shortcut and with_shortcut:
        shortcut = (s.shortcut_name, tuple(skeleton(x) for x in s.shortcut))
    return (*head, branches, shortcut)


def numbers(s: Stmt, with_shortcut: bool = True) -> list[Token | None]:
    """The statement's numbers (and an activation's kind), in the order skeleton() blanks them."""
    if _is_act(s):
        return [Token("", s.layer.kind, role="act")]
    out = [_tokens(a)[1] for a in _args(s)]
    out = [t for t in out if t is not None]
    if s.kind == "call":
        return out
    if s.kind == "repeat":
        for t in out:
            t.role = "n"
        return out + numbers(s.body[0], with_shortcut)
    for b in s.branches:
        for x in b:
            out += numbers(x, with_shortcut)
    if s.shortcut and with_shortcut:
        for x in s.shortcut:
            out += numbers(x)
    return out


def _render(s: Stmt, exprs: list[str], it) -> Stmt:
    """A copy of ``s`` whose numbers are replaced, in order, by the expressions ``exprs``."""
    def arg(a: str) -> str:
        text, tok = _tokens(a)
        if tok is None:
            return a
        e = exprs[next(it)]
        return f"{tok.key}{e}" if not tok.size or not e.isdigit() else f"{tok.key}{e}x{e}"

    t = copy.copy(s)
    if _is_act(s):  # its kind is a parameter's value, or the kind all instances share
        t.layer = copy.copy(s.layer)
        t.layer.kind = exprs[next(it)]
        return t
    if s.kind == "layer" and s.layer is not None:
        t.layer = copy.copy(s.layer)
        t.layer.args = [arg(a) for a in s.layer.args]
    else:
        t.args = [arg(a) for a in s.args]
    if s.kind == "call":
        return t
    if s.kind == "repeat":
        t.branches = [[_render(s.body[0], exprs, it)]]
        return t
    t.branches = [[_render(x, exprs, it) for x in b] for b in s.branches]
    if s.shortcut:
        t.shortcut = [_render(x, exprs, it) for x in s.shortcut]
    return t


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return float_text(v)
    return str(v)


class _Factorer:
    def __init__(self, source: Source, kinds: set[str]) -> None:
        self.s = source
        self.kinds = kinds
        self.blocks: list[Block] = []
        self.taken: set[str] = set()

    def run(self, stmts: list[Stmt]) -> list[Stmt]:
        for s in _walk(stmts):
            if s.kind == "layer" and s.layer is not None and s.layer.kind in EXPLICIT:
                s.layer = copy.copy(s.layer)  # the plain spec's layers stay as they are
                keys = {a.split("=")[0] for a in s.layer.args}
                s.layer.args = s.layer.args + [f"{k}={v}" for k, v in EXPLICIT[s.layer.kind] if k not in keys]
                s.layer.args.sort(key=_arg_order)
        stmts = self.rounds(stmts)
        self.inline(stmts)
        defaults = {b.name: {f"{p}={_fmt(d)}" for p, d in b.params if d is not None} for b in self.blocks}
        for s in [*_shown(stmts), *(x for b in self.blocks for x in _shown(b.body))]:
            if s.kind == "layer" and s.layer is not None and s.layer.kind in EXPLICIT:
                layer_defaults = {f"{k}={v}" for k, v in EXPLICIT[s.layer.kind]}
                s.layer.args = [a for a in s.layer.args if a not in layer_defaults]
            elif s.kind == "call":
                s.args = [a for a in s.args if a not in defaults.get(s.name, ())]
        return stmts

    def inline(self, stmts: list[Stmt]) -> None:
        """A block called from one place only is written there, as a group (its call's scope)."""
        while True:
            uses: dict[str, list[Stmt]] = {}
            for s in [*_shown(stmts), *(x for b in self.blocks for x in _shown(b.body))]:
                if s.kind == "call":
                    uses.setdefault(s.name, []).append(s)
                elif s.kind == "repeat" and s.body[0].kind == "call":  # a repeated call stays a call
                    uses.setdefault(s.body[0].name, []).extend([s, s])
            once = next((b for b in self.blocks if len(uses.get(b.name, [])) == 1), None)
            if once is None:
                return
            call = uses[once.name][0]
            values = _bind(once, call.args)
            call.kind, call.shown = "group", [_substitute(x, values) for x in once.body]
            call.name, call.args = "", []
            if call.label is None:
                call.label = None  # an unlabelled call and an unlabelled group both take the next index
            self.blocks.remove(once)

    def rounds(self, stmts: list[Stmt]) -> list[Stmt]:
        for _ in range(64):
            found = self.groups(stmts)
            wrapped = {id(g.body[0]) for g in found
                       if _inner(g)[0] is not None and not any(self.groups(g.body[0].body))}
            groups = [g for g in found if id(g) not in wrapped and (
                not any(self.groups(g.body)) or _inner(g)[0] is not None and id(g.body[0]) in wrapped)]
            if not groups:
                break
            self.round(groups)
            stmts = self.repeats(stmts)
        return stmts

    def groups(self, stmts: list[Stmt]) -> list[Stmt]:
        """The unfactored groups in ``stmts``, outermost first (a `_` group is not one: it splices)."""
        out = []
        for s in stmts:
            if s.kind == "group" and s.label != "_" and not getattr(s, "final", False):
                out.append(s)
            if s.kind not in ("call", "repeat"):
                for b in s.branches:
                    out += self.groups(b)
                if s.shortcut:
                    out += self.groups(s.shortcut)
        return out

    def round(self, groups: list[Stmt]) -> None:
        buckets: dict[tuple, list[Stmt]] = {}
        for g in groups:
            wrapper, inner = _inner(g)
            key = (wrapper, *(skeleton(x, with_shortcut=False) for x in _unwrap(inner)[0]))
            buckets.setdefault(key, []).append(g)
        for key in sorted(buckets, key=len):  # a body that lacks one or two of another's statements
            n = len(key) - 1  # (after the wrapper's label)
            wider = [k for k in buckets if k[0] == key[0] and n < len(k) - 1 <= n + 2 and 2 * n >= len(k) - 1
                     and _subsequence(key[1:], k[1:]) is not None]
            if n >= 2 and wider and not any(_joins_or_skips(x) for k in wider for x in _extra(key[1:], k[1:])):
                into = max(wider, key=lambda k: (len(k), len(buckets[k])))
                buckets[into] += buckets.pop(key)
        for members in buckets.values():
            flags = [_unwrap(_inner(g)[1])[1] for g in members]
            if len(set(flags)) > 1 and self.make_block(members, conditional=True):
                continue
            for flag in set(flags):
                same = [g for g, f in zip(members, flags, strict=True) if f == flag]
                if len(same) < 2 or not self.make_block(same):
                    for g in same:
                        g.final = True

    def make_block(self, members: list[Stmt], conditional: bool = False) -> bool:
        """A block for groups of one skeleton; ``conditional``: some are a residual around it and
        some are not, which `residual if` expresses where a condition tells them apart."""
        wrapper = _inner(members[0])[0]
        bodies = [_unwrap(_inner(g)[1])[0] if conditional else _inner(g)[1] for g in members]
        # the template: a member with every statement and projection the others may lack
        t = max(range(len(members)), key=lambda k: (len(bodies[k]), len([n for x in bodies[k] for n in numbers(x)])))
        template = bodies[t]
        t_key = tuple(skeleton(x, False) for x in template)
        places = []  # each member's statements' positions in the template
        for body in bodies:
            at = _embedding(body, template, t_key)
            if at is None:
                return False
            full = [template[j] for j in at]
            if tuple(skeleton(x) for x in body) != tuple(skeleton(x) for x in full) \
                    and not self.lacks_only_shortcuts(body, full):
                return False
            places.append(at)
        optional = [j for j in range(len(template)) if any(j not in at for at in places)]
        columns, spare, left_out = [], set(), set()
        for body, at in zip(bodies, places, strict=True):
            column = []
            for j, x in enumerate(template):
                if j in at:
                    column += self.aligned_one(body[at.index(j)], x)
                else:
                    spare.update(range(len(column), len(column) + len(numbers(x))))
                    if _is_act(x):  # an activation some members lack: `act=none`
                        left_out.add(len(column))
                    column += [None] * len(numbers(x))
            columns.append(column)
        exprs, params = self.parameters(columns, template, spare, left_out)
        if exprs is None:
            return False
        order = iter(range(len(exprs)))
        body = [_render(x, exprs, order) for x in template]
        if optional:
            body = self.optional(body, optional, places, members, params)
            if body is None:
                return False
        if conditional:
            cond = self.condition(members, params)
            if cond is None:
                return False
            body = [Stmt("residual", branches=[body], cond=cond)]
        if wrapper is not None:
            body = [Stmt("group", branches=[body], label=wrapper)]
        name = self.block_name(members, body)
        block = Block(name, [(p.name, _fmt(p.default) if p.option else None) for p in params], body, len(members))
        self.blocks.append(block)
        for k, g in enumerate(members):
            args = []
            for p in params:  # every option written while factoring; defaults dropped at the end
                v = p.values[k]
                args.append(f"{p.name}={_fmt(v)}" if p.option else _fmt(v))
            original = g.body
            g.kind, g.name, g.args, g.branches = "call", name, args, [original]
        return True

    def optional(self, body: list[Stmt], optional: list[int], places: list[list[int]], members: list[Stmt],
                 params: list[_Param]) -> list[Stmt] | None:
        """The template with each statement some members lack inside `if COND { }`: COND is
        `P != in_channels` where that tells them apart (MobileNet's expansion, left out where
        it would not widen), or else a true/false parameter (`se`)."""
        ins = []
        for g in members:
            a = self.s.shape(g.first_input()) if g.first_input() else None
            ins.append(a[1] if a is not None and len(a) > 1 else None)
        out: list[Stmt] = []
        conds: dict[tuple, str] = {}
        for j, s in enumerate(body):
            if j not in optional or s.kind == "layer" and s.layer is not None and s.layer.kind in [
                    p.name for p in params if p.name.startswith("act")]:  # an activation `act=none` leaves out
                out.append(s)
                continue
            present = tuple(j in at for at in places)
            cond = conds.get(present)
            if cond is None:
                cond = next((f"{p.name} != in_channels" for p in params if not p.option and None not in ins
                             and all((v != i) == f for v, i, f in zip(p.values, ins, present, strict=True))), None)
            if cond is None:
                name = "se" if s.kind == "gate" else f"has_{s.layer.kind if s.layer is not None else s.kind}"
                name = name if not any(p.name == name for p in params) else f"{name}{len(params)}"
                params.append(_Param(name, list(present)))
                params.sort(key=lambda p: p.option)
                cond = name
            conds[present] = cond
            if out and out[-1].kind == "if" and out[-1].cond == cond:
                out[-1].body.append(s)
            else:
                out.append(Stmt("if", branches=[[s]], cond=cond))
        return out

    def condition(self, members: list[Stmt], params: list[_Param]) -> str | None:
        """`in_channels == OUT [and stride == 1]`, where it holds exactly for the members that are a
        residual (MobileNetV2's inverted residual, EfficientNet's MBConv)."""
        ins, outs, flags = [], [], []
        for g in members:
            layers = [layer for x in g.body for layer in x.layers()]
            a = self.s.shape(g.first_input()) if g.first_input() else None
            b = self.s.shape(layers[-1].output) if layers else None
            if a is None or b is None or len(a) < 2 or len(b) < 2:
                return None
            ins.append(a[1])
            outs.append(b[1])
            flags.append(_unwrap(_inner(g)[1])[1])
        out = next((p for p in params if p.values == outs), None)
        if out is None:
            return None
        stride = next((p for p in params if p.name.startswith("stride")), None)
        cond = f"in_channels == {out.name}" + (f" and {stride.name} == 1" if stride is not None else "")
        holds = [i == o and (stride is None or stride.values[k] == 1)
                 for k, (i, o) in enumerate(zip(ins, outs, strict=True))]
        return cond if holds == flags else None

    def lacks_only_shortcuts(self, body: list[Stmt], template: list[Stmt]) -> bool:
        return tuple(skeleton(x, False) for x in body) == tuple(skeleton(x, False) for x in template) \
            and all(self.shortcut_subset(a, b) for a, b in zip(body, template, strict=True))

    def shortcut_subset(self, a: Stmt, b: Stmt) -> bool:
        if a.shortcut and skeleton(a) != skeleton(b):
            return False
        return all(self.shortcut_subset(x, y) for ba, bb in zip(a.branches, b.branches, strict=True)
                   for x, y in zip(ba, bb, strict=True))

    def aligned(self, body: list[Stmt], template: list[Stmt]) -> list:
        """The member's numbers at the template's positions (None where it lacks a projection)."""
        out: list = []
        for a, b in zip(body, template, strict=True):
            out += self.aligned_one(a, b)
        return out

    def aligned_one(self, a: Stmt, b: Stmt) -> list:
        if _is_act(a):
            return [a.layer.kind]
        own = [_tokens(x)[1] for x in _args(a)]
        out = [t.value for t in own if t is not None]
        if a.kind == "call":
            return out
        if a.kind == "repeat":
            return out + self.aligned_one(a.body[0], b.body[0])
        for ba, bb in zip(a.branches, b.branches, strict=True):
            for x, y in zip(ba, bb, strict=True):
                out += self.aligned_one(x, y)
        if b.shortcut:
            if a.shortcut:
                for x, y in zip(a.shortcut, b.shortcut, strict=True):
                    out += self.aligned_one(x, y)
            else:
                out += [None] * sum(len(numbers(y)) for y in b.shortcut)
        return out

    def parameters(self, columns: list[list], template: list[Stmt], spare: set[int] = frozenset(),
                   left_out: set[int] = frozenset()):
        """An expression per number position, and the parameters they use. A position in
        ``spare`` (a statement some members lack) takes any value where it is missing; one in
        ``left_out`` (an activation some members lack) is `none` there."""
        keys = [t for x in template for t in numbers(x)]
        n = len(keys)
        exprs: list[str] = []
        params: list[_Param] = []
        used: Counter = Counter()
        for j in range(n):
            vals = [c[j] for c in columns]
            if j in left_out:
                vals = [v if v is not None else "none" for v in vals]
            known = [v for v in vals if v is not None]
            if len(set(known)) <= 1:
                exprs.append(_fmt(known[0]) if known else "0")
                continue
            expr = self.relate(vals, params)
            if expr is None:
                if any(v is None for v in vals) and j not in spare:
                    return None, None
                free = {k for k, v in enumerate(vals) if v is None}
                vals = [v if v is not None else Counter(known).most_common(1)[0][0] for v in vals]
                key = keys[j].key.rstrip("=")
                base = keys[j].role or (key if key in OPTION_PARAMS else ("k" if keys[j].size else "c"))
                used[base] += 1
                pname = base if used[base] == 1 else f"{base}{used[base]}"
                p = _Param(pname, vals, option=base in OPTION_PARAMS and base != "k", free=free)
                if p.option:
                    p.default = Counter(vals).most_common(1)[0][0]
                params.append(p)
                expr = pname
            exprs.append(expr)
        params.sort(key=lambda p: p.option)
        return exprs, params

    def relate(self, vals: list, params: list[_Param]) -> str | None:
        """An expression of an earlier parameter equal to ``vals`` wherever known. A parameter's
        unused values (``free``) match anything, and take the value the relation then needs."""
        for p in params:
            found = self.related(vals, p)
            if found is not None:
                expr, inverse = found
                for k in sorted(p.free):
                    if vals[k] is not None:
                        p.values[k] = inverse(vals[k])
                        p.free.discard(k)
                return expr
        return None

    @staticmethod
    def related(vals: list, p: _Param):
        """(expression, its inverse) of ``p`` equal to ``vals`` where both are known, or None."""
        name = p.name
        pairs = [(v, b) for k, (v, b) in enumerate(zip(vals, p.values, strict=True)) if v is not None
                 and k not in p.free]
        same = (name, lambda v: v)
        if any(isinstance(x, (str, bool, tuple)) for pair in pairs for x in pair):  # kinds, flags, sizes: equal or not
            return same if all(v == b and type(v) is type(b) for v, b in pairs) else None
        if any(isinstance(x, float) for pair in pairs for x in pair):
            return same if all(v == b for v, b in pairs) else None
        if all(v == b for v, b in pairs):
            return same
        free_ok = all(isinstance(v, int) for k, v in enumerate(vals) if k in p.free and v is not None)
        if all(b and v % b == 0 for v, b in pairs):
            ks = {v // b for v, b in pairs}
            if len(ks) == 1:
                m = ks.pop()
                if free_ok and all(v % m == 0 for k, v in enumerate(vals) if k in p.free and v is not None):
                    return f"{name}*{m}", lambda v, m=m: v // m
        if all(v and b and b % v == 0 for v, b in pairs):
            ks = {b // v for v, b in pairs}
            if len(ks) == 1:
                m = ks.pop()
                return f"{name}//{m}", lambda v, m=m: v * m
        if pairs and all(v == (b - 1) // 2 for v, b in pairs) and any(b > 1 for _, b in pairs):  # a pad that
            return f"({name}-1)//2", lambda v: 2 * v + 1  # keeps the size of a kernel's output
        return None

    def block_name(self, members: list[Stmt], rendered: list[Stmt]) -> str:
        labels = [g.label for g in members if g.label and not g.label.isdigit()]
        base = None
        if len(labels) == len(members):
            prefix = _common_prefix(labels).rstrip("0123456789_")
            if len(prefix) >= 3 and prefix.isidentifier() and prefix not in self.kinds and prefix not in RESERVED:
                base = prefix
        if base is None:
            body = rendered  # with `act` where the activation is a parameter
            if any(s.kind == "residual" for s in body):
                base = "res_block"
            elif any(s.kind == "concat" for s in body):
                base = "mixed"
            elif any(s.kind == "gate" for s in body):
                base = "se_block"
            elif len(body) <= 3 and all(s.kind == "layer" and s.layer is not None for s in body):
                base = "_".join(_short(s.layer.kind) for s in body)
            else:
                base = "unit"
        name, k = base, 1
        while name in self.taken or name in self.kinds or name in RESERVED:
            k += 1
            name = f"{base}{k}"
        self.taken.add(name)
        return name

    def repeats(self, stmts: list[Stmt]) -> list[Stmt]:
        """Runs of equal calls as one `repeat`, everywhere in ``stmts``: unlabelled ones as
        `repeat N call`, ones labelled PREFIX1, PREFIX2, ... as `repeat N as i { "PREFIX{i+1}": call }`."""
        out: list[Stmt] = []
        for s in stmts:
            if s.kind not in ("call", "repeat"):
                s.branches = [self.repeats(b) for b in s.branches]
                if s.shortcut:
                    s.shortcut = self.repeats(s.shortcut)
            prev = out[-1] if out else None
            if s.kind == "call" and prev is not None and self.extend(prev, s, out):
                continue
            out.append(s)
        return out

    def extend(self, prev: Stmt, s: Stmt, out: list[Stmt]) -> bool:
        """Add the call ``s`` to the repeat (or call) ``prev`` before it, where it is one more copy."""
        last = prev.body[-1] if prev.kind == "repeat" else prev
        if last.kind != "call" or last.name != s.name or last.args != s.args:
            return False
        if prev.kind == "repeat" and prev.label is None and bool(prev.name) == (s.label is not None):
            if s.label is None or _numbered(s.label) == _next(prev.body[-1].label):
                prev.body.append(s)
                prev.args = [str(len(prev.body))]
                return True
            return False
        if prev.kind == "call" and s.label is None and prev.label is None:
            out[-1] = Stmt("repeat", branches=[[prev, s]], args=["2"])
            return True
        if prev.kind == "call" and prev.label is not None and s.label is not None \
                and _numbered(s.label) is not None and _numbered(s.label) == _next(prev.label):
            stem, first = _numbered(prev.label)
            offset = f"i+{first}" if first else "i"
            out[-1] = Stmt("repeat", branches=[[prev, s]], args=["2"], name=f"{stem}{{{offset}}}")
            return True
        return False


def _numbered(label: str | None) -> tuple[str, int] | None:
    """('denselayer', 3) for 'denselayer3'."""
    m = re.fullmatch(r"([A-Za-z_][\w\-]*?[A-Za-z_\-])(\d+)", label or "")
    return (m.group(1), int(m.group(2))) if m else None


def _next(label: str | None) -> tuple[str, int] | None:
    n = _numbered(label)
    return (n[0], n[1] + 1) if n else None


def _common_prefix(words: list[str]) -> str:
    first = words[0]
    n = len(first)
    for w in words[1:]:
        n = min(n, len(w))
        for i in range(n):
            if w[i] != first[i]:
                n = i
                break
    return first[:n]


def _short(kind: str) -> str:
    return {"batchnorm": "bn", "conv": "conv"}.get(kind, kind)


def _pattern(s: Stmt) -> set:
    """What a statement's numbers say about its role, whatever their values: which are 1 or 0,
    which equal which (a depthwise conv's groups equal its channels; an expansion's kernel is 1)."""
    vals = [t.value for t in numbers(s) if t is not None]
    out = {(k, "one") for k, v in enumerate(vals) if v == 1} | {(k, "zero") for k, v in enumerate(vals) if v == 0}
    return out | {(j, k) for j in range(len(vals)) for k in range(j + 1, len(vals)) if vals[j] == vals[k]}


def _embedding(body: list[Stmt], template: list[Stmt], t_key: tuple) -> list[int] | None:
    """The positions in ``template`` of ``body``'s statements, in order: of the ways its
    skeletons fit, the one whose numbers play the same roles (the depthwise conv where the
    template has its depthwise conv, not its expansion)."""
    key = tuple(skeleton(x, False) for x in body)
    if len(key) == len(t_key):
        return list(range(len(key))) if key == t_key else None
    best, best_score = None, -1
    for at in itertools.combinations(range(len(t_key)), len(key)):
        if all(t_key[j] == k for j, k in zip(at, key, strict=True)):
            score = sum(len(_pattern(x) ^ _pattern(template[j])) for x, j in zip(body, at, strict=True))
            if best is None or score < best_score:
                best, best_score = list(at), score
    return best


def _extra(short: tuple, long: tuple) -> list:
    """The skeletons of ``long`` that ``short`` lacks (its leftmost fit)."""
    at = set(_subsequence(short, long) or ())
    return [x for j, x in enumerate(long) if j not in at]


def _joins_or_skips(sk) -> bool:
    """Whether a skeleton holds a concat, add or mul, or a `from`: what an optional statement may
    not be (a branch that exists in some instances only is another network, not an option)."""
    if not isinstance(sk, tuple):
        return False
    return (len(sk) > 2 and sk[0] in ("concat", "add", "mul", "from")) or any(_joins_or_skips(x) for x in sk)


def _subsequence(short: tuple, long: tuple) -> list[int] | None:
    """The positions in ``long`` of ``short``'s items, in order (leftmost), or None."""
    at, j = [], 0
    for item in short:
        while j < len(long) and long[j] != item:
            j += 1
        if j == len(long):
            return None
        at.append(j)
        j += 1
    return at
