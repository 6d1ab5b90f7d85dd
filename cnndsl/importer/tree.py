"""From a graph of layers to nested statements: chains become sequences, a fork that meets again
at a join becomes `concat { }`, `residual { } [shortcut { }]`, `add { }`, `gate { }` or
`mul { }` with one branch per input of the join.

A fork's join is its immediate post-dominator (every path from the fork passes through it),
found for every tensor in one pass (Cooper, Harvey and Kennedy's intersection, on the DAG in
reverse topological order).

A skip across scales is not nested: where one branch of a fork is a short chain and the other
goes down to a coarser map and back up before they meet (U-Net's copy and crop, LR-ASPP's
low-resolution classifier), the short branch becomes `{ from LABEL; ... }` at the join, and the
main path goes on as a sequence. A graph that is still not a nesting of branches is an
ImportModelError naming the join.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnndsl.errors import ImportModelError
from cnndsl.importer.channels import NEAREST_SLICE, SPLIT
from cnndsl.importer.lift import Layer
from cnndsl.importer.load import Source


@dataclass
class Stmt:
    """A statement of the spec to write. ``kind``: 'layer', 'group', 'call', 'repeat', or a join
    ('concat', 'add', 'mul', 'residual', 'gate')."""

    kind: str  # or 'from': the branch goes on from tensor ``start``
    layer: Layer | None = None  # for 'layer'
    branches: list[list[Stmt]] = field(default_factory=list)  # joins; a group's, call's or repeat's body is [0]
    shortcut: list[Stmt] | None = None  # residual's projection
    shortcut_name: str | None = None
    label: str | None = None
    args: list[str] = field(default_factory=list)  # a call's arguments, a repeat's count
    name: str = ""  # a call's block
    start: str | None = None  # a join's fork: the tensor its branches start from
    cond: str | None = None  # `residual if COND`
    shown: list[Stmt] | None = None  # a group's text where it differs from its layers (an inlined block)

    @property
    def body(self) -> list[Stmt]:
        return self.branches[0]

    def first_input(self) -> str | None:
        """The tensor the statement reads."""
        if self.kind == "from":
            return None
        if self.kind == "layer":
            return self.layer.inputs[0] if self.layer is not None else None
        if self.start is not None:
            return self.start
        for branch in self.branches:
            for s in branch:
                return s.first_input()
        return None

    def layers(self):
        """The layers inside, in the order the checker meets them."""
        if self.layer is not None:
            yield self.layer
        for branch in self.branches:
            for s in branch:
                yield from s.layers()
        for s in self.shortcut or ():
            yield from s.layers()


def build(source: Source, layers: list[Layer], output: str) -> list[Stmt]:
    """The statements that compute ``output`` from the source's input."""
    return _Builder(source, layers, output).run()


class _Builder:
    def __init__(self, source: Source, layers: list[Layer], output: str) -> None:
        self.s = source
        self.layers = layers
        self.output = output
        self.producer = {layer.output: layer for layer in layers}
        self.pos = {source.input: 0}
        for k, layer in enumerate(layers, 1):
            self.pos[layer.output] = k
        self.consumers: dict[str, list[Layer]] = {}
        for layer in layers:
            for i in dict.fromkeys(layer.inputs):
                self.consumers.setdefault(i, []).append(layer)
        self.emitted: set[int] = set()
        self.froms: dict[str, str] = {}  # a skip's stand-in tensor -> the tensor it goes on from
        self.shares: set[int] = set()  # the channel slices that became `concat split`

    def fail(self, message: str, hint: str | None = None) -> ImportModelError:
        return ImportModelError(message, path=self.s.path, hint=hint)

    def run(self) -> list[Stmt]:
        self.regroup_concats()
        live = self.ancestors(self.output, 0)
        self.layers = [layer for layer in self.layers if layer.output in live]
        if self.s.input not in live:
            raise self.fail("the model's output does not depend on its input")
        for layer in self.layers:
            for i in layer.inputs:
                if i not in self.pos:
                    raise self.fail(f"{layer.op.where()} reads '{i}', which the network does not compute")
        for i, layers in list(self.consumers.items()):
            self.consumers[i] = [c for c in layers if c.output in live]
        self.cut_skips()
        self.ipdom = self.post_dominators()
        stmts = self.seq(self.s.input, self.output, live)
        missed = [layer for layer in self.layers if id(layer) not in self.emitted]
        if missed:
            raise self.fail(f"{missed[0].op.where()} is not inside one nesting of branches",
                            "cnndsl joins branches that start from the same tensor")
        for layer in self.layers:
            if layer.kind == SPLIT and id(layer) not in self.shares:
                raise self.fail(f"{layer.op.where()} takes channels {layer.args[0]}:{layer.args[1]}, which is not "
                                "one of equal shares concatenated in order", NEAREST_SLICE)
        return stmts

    def cut_skips(self) -> None:
        """Make each skip across scales a `from` (see the module's docstring): the short branch's
        first layer reads a stand-in for the fork's tensor, so that the fork no longer nests."""
        ipdom = self.post_dominators()
        cuts = []
        for t in [self.s.input, *(layer.output for layer in self.layers)]:
            join = self.producer.get(ipdom.get(t, ""))
            if join is None or not join.is_join or len(join.inputs) != 2 or join.inputs[0] == join.inputs[1]:
                continue
            sides = [self.ancestors(v, self.pos[t]) - {t} for v in join.inputs]
            if sides[0] & sides[1] or not all(t in self.ancestors(v, self.pos[t]) for v in join.inputs):
                continue
            short, long_ = sorted((0, 1), key=lambda k: len(sides[k]))
            if len(sides[short]) > 3 or len(sides[long_]) < max(6, 3 * len(sides[short])) \
                    or not self.chain(sides[short], t) \
                    or not self.coarser(self.spine(t, sides[long_], join.inputs[long_], ipdom), t):
                continue
            reader = join if not sides[short] else next(self.producer[v] for v in sides[short]
                                                        if t in self.producer[v].inputs)
            cuts.append((reader, t))
        for reader, t in cuts:
            stand_in = f"{t}::from"
            self.froms[stand_in] = t
            reader.inputs = [stand_in if i == t else i for i in reader.inputs]
            if t in self.producer:
                self.producer[t].referenced = True
        if cuts:
            self.index()

    def chain(self, tensors: set[str], t: str) -> bool:
        """Whether the layers making ``tensors`` are one chain from ``t``, read by nothing else."""
        for v in tensors:
            layer = self.producer[v]
            if len(layer.inputs) != 1 or layer.inputs[0] not in tensors | {t} or len(self.consumers.get(v, [])) != 1:
                return False
        return True

    def spine(self, t: str, side: set[str], end: str, ipdom: dict[str, str]) -> list[str]:
        """The tensors every path of a branch passes through, from ``t`` to its ``end`` (not an
        attention branch's pooled map, which a gate multiplies back in)."""
        first = next(c.output for c in self.consumers.get(t, []) if c.output in side)
        out = [first]
        while out[-1] != end:
            out.append(ipdom[out[-1]])
        return out

    def coarser(self, spine: list[str], t: str) -> bool:
        """Whether a branch goes down to a smaller map than ``t`` and its end (and so back up)."""
        end = spine[-1]
        tensors = spine
        def pixels(v: str) -> int | None:
            shape = self.s.shape(v)
            return shape[2] * shape[3] if shape is not None and len(shape) == 4 and all(
                isinstance(d, int) for d in shape[2:]) else None
        sizes = [p for p in map(pixels, tensors) if p is not None]
        ends = [pixels(t), pixels(end)]
        return bool(sizes) and None not in ends and min(sizes) < min(ends)

    def index(self) -> None:
        self.producer = {layer.output: layer for layer in self.layers}
        self.pos = {self.s.input: 0}
        for k, layer in enumerate(self.layers, 1):
            self.pos[layer.output] = k
        for stand_in, t in self.froms.items():
            self.pos[stand_in] = self.pos[t]
        self.consumers = {}
        for layer in self.layers:
            for i in dict.fromkeys(layer.inputs):
                self.consumers.setdefault(i, []).append(layer)

    def regroup_concats(self) -> None:
        """Concats as the language nests them (concatenation is associative, so the values are the
        same): one that repeats the inputs of an earlier one goes on from it (DenseNet's
        torch.cat of every earlier feature map), and inputs whose branches meet before the others
        are concatenated first (an exporter that flattened Inception-v3's inner torch.cat)."""
        made: dict[tuple[str, ...], str] = {}
        out: list[Layer] = []
        for layer in self.layers:
            if layer.kind == "concat":
                ins = layer.inputs
                for n in range(len(ins) - 1, 1, -1):
                    if tuple(ins[:n]) in made:
                        layer.inputs = [made[tuple(ins[:n])], *ins[n:]]
                        break
                made.setdefault(tuple(ins), layer.output)
                out += self.nest(layer)
            else:
                out.append(layer)
        self.layers = out
        self.index()

    def nest(self, layer: Layer) -> list[Layer]:
        """The concat, after a concat of each run of its inputs whose branches meet before the rest."""
        ins = layer.inputs
        if len(ins) < 3:
            return [layer]
        pos = {self.s.input: 0, **{x.output: k for k, x in enumerate(self.layers, 1)}}
        floor = min(pos.get(i, 0) for i in ins)
        anc = [self.ancestors(i, 0) for i in ins]
        everyone = set.intersection(*anc)
        meet_all = max((pos.get(t, 0) for t in everyone), default=0)
        out: list[Layer] = []
        groups: list[list[int]] = [[0]]
        for k in range(1, len(ins)):
            common = anc[k - 1] & anc[k]
            meet = max((pos.get(t, 0) for t in common), default=0)
            if meet > meet_all and meet >= floor and len(groups[-1]) >= 1 and groups[-1][-1] == k - 1 \
                    and self._meets(anc, groups[-1], k, meet, pos):
                groups[-1].append(k)
            else:
                groups.append([k])
        if all(len(g) == 1 for g in groups):
            return [layer]
        new_inputs = []
        for g in groups:
            if len(g) == 1:
                new_inputs.append(ins[g[0]])
                continue
            name = f"{layer.output}::part{len(out)}"
            out.append(Layer("concat", [], [ins[k] for k in g], name, layer.op))
            new_inputs.append(name)
        layer.inputs = new_inputs
        return [*out, layer]

    @staticmethod
    def _meets(anc: list[set[str]], group: list[int], k: int, meet: int, pos: dict) -> bool:
        """Whether input k meets every input of the group at the same latest point."""
        common = set.intersection(*(anc[j] for j in group), anc[k])
        return max((pos.get(t, 0) for t in common), default=0) == meet

    def ancestors(self, target: str, floor: int) -> set[str]:
        """The tensors that reach ``target`` (itself included), made at or after position ``floor``."""
        seen, todo = {target}, [target]
        while todo:
            layer = self.producer.get(todo.pop())
            if layer is None:
                continue
            for i in layer.inputs:
                if i not in seen and self.pos.get(i, -1) >= floor:
                    seen.add(i)
                    todo.append(i)
        return seen

    def post_dominators(self) -> dict[str, str]:
        ipdom = {self.output: self.output}
        order = [self.s.input, *(layer.output for layer in self.layers)]
        for t in reversed(order):
            if t == self.output:
                continue
            succ = [c.output for c in self.consumers.get(t, [])]
            if not succ:
                continue
            d = succ[0]
            for other in succ[1:]:
                d = self.intersect(d, other, ipdom)
            ipdom[t] = d
        return ipdom

    def intersect(self, a: str, b: str, ipdom: dict[str, str]) -> str:
        while a != b:
            while self.pos[a] < self.pos[b]:
                a = ipdom[a]
            while self.pos[b] < self.pos[a]:
                b = ipdom[b]
        return a

    def take(self, layer: Layer) -> None:
        if id(layer) in self.emitted:
            raise self.fail(f"the branches cross: {layer.op.where()} is on two of them",
                            "cnndsl's branches nest: each join closes the branches of one fork; a skip from "
                            "another tensor (`from LABEL`) is not imported yet")
        self.emitted.add(id(layer))

    def seq(self, t: str, u: str, region: set[str]) -> list[Stmt]:
        """The statements from tensor ``t`` to tensor ``u``, through the tensors in ``region``."""
        out: list[Stmt] = []
        while t != u:
            nexts = [c for c in self.consumers.get(t, []) if c.output in region]
            if not nexts:
                raise self.fail(f"no path from '{t}' to '{u}'")
            if len(nexts) == 1 and not nexts[0].is_join:
                self.take(nexts[0])
                out.append(Stmt("layer", nexts[0]))
                t = nexts[0].output
                continue
            p = self.ipdom.get(t)
            join = self.producer.get(p) if p is not None else None
            if join is None or not join.is_join or p not in region:
                where = join.op.where() if join is not None else f"'{t}'"
                raise self.fail(f"the branches that start at '{t}' cross before they meet at {where}",
                                "cnndsl's branches nest: each join closes the branches of one fork; a skip from "
                                "another tensor (`from LABEL`) is not imported yet")
            self.take(join)
            out.append(self.join(join, [self.branch(join, t, v) for v in join.inputs], t))
            t = p
        return out

    def branch(self, join: Layer, t: str, v: str) -> list[Stmt]:
        """The statements of the join's branch from the fork ``t`` to its input ``v``, or from
        where a skip goes on from."""
        if v == t:
            return []
        if t in self.ancestors(v, self.pos[t]):
            return self.seq(t, v, self.ancestors(v, self.pos[t]))
        stand_ins = [a for a in self.ancestors(v, 0) if a in self.froms]
        if len(stand_ins) == 1 and t not in self.ancestors(v, 0):
            start = stand_ins[0]
            rest = self.seq(start, v, self.ancestors(v, self.pos[start])) if v != start else []
            return [Stmt("from", start=self.froms[start]), *rest]
        raise self.fail(f"{join.op.where()} joins a branch that does not start from '{t}'",
                        "cnndsl joins branches that start from the same tensor, or from an earlier one "
                        "across scales (`from LABEL`)")

    def join(self, join: Layer, branches: list[list[Stmt]], start: str) -> Stmt:
        s = self.join_kind(join, branches, start)
        s.start = start
        return s

    def join_kind(self, join: Layer, branches: list[list[Stmt]], start: str) -> Stmt:
        if join.kind == "concat":
            return self.concat(join, branches, start)
        if any(b and b[0].kind == "from" for b in branches):
            return Stmt(join.kind, join, branches)
        empty = [i for i, b in enumerate(branches) if not b]
        if join.kind == "mul":
            if len(branches) == 2 and len(empty) == 1:
                body = branches[1 - empty[0]]
                shape = self.s.shape(join.inputs[1 - empty[0]])
                if shape is not None and len(shape) == 4 and tuple(shape[2:]) == (1, 1):
                    return Stmt("gate", join, [body])
            return Stmt("mul", join, branches)
        if len(branches) == 2 and len(empty) == 1:
            return Stmt("residual", join, [branches[1 - empty[0]]])
        if len(branches) == 2 and not empty:
            before, after = self.s.shape(start), self.s.shape(join.output)
            if before is not None and after is not None and tuple(before[1:]) != tuple(after[1:]):
                body, proj = sorted(branches, key=len, reverse=True)
                return Stmt("residual", join, [body], shortcut=proj)
        return Stmt("add", join, branches)

    def concat(self, join: Layer, branches: list[list[Stmt]], start: str) -> Stmt:
        """`concat split` where each branch starts with the next equal share of the channels,
        `concat crop` where branches end in a centre crop to the size of the others."""
        shape = self.s.shape(start)
        shares = [b[0].layer.args if b and b[0].kind == "layer" and b[0].layer.kind == SPLIT else None
                  for b in branches]
        if shape is not None and len(shape) == 4 and all(shares) and isinstance(shape[1], int):
            n = len(branches)
            if shape[1] % n == 0 and [tuple(map(int, a)) for a in shares] == [
                    (k * shape[1] // n, (k + 1) * shape[1] // n) for k in range(n)]:
                self.shares.update(id(b[0].layer) for b in branches)
                return Stmt("concat", join, [b[1:] for b in branches], args=["split"])
        out = self.s.shape(join.output)
        crops = [bool(b) and b[-1].kind == "layer" and b[-1].layer.kind == "crop" and out is not None
                 and b[-1].layer.args == [f"{out[2]}x{out[3]}"] for b in branches]
        if any(crops) and not all(crops):
            return Stmt("concat", join, [b[:-1] if c else b for b, c in zip(branches, crops, strict=True)],
                        args=["crop"])
        return Stmt("concat", join, branches)
