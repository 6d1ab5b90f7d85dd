"""Stage 2, check: syntax.Spec -> ir.Graph. Expands blocks and repeats, names, infers, counts."""

from __future__ import annotations

import os

from cnndsl.errors import CheckError, RuleError, did_you_mean
from cnndsl.lang import limits
from cnndsl.lang import syntax as S
from cnndsl.lang.show import fmt_shape
from cnndsl.lang.source import Span
from cnndsl.lang.values import Env, evaluate, names
from cnndsl.layers import REGISTRY, AddResidual, ConcatChannels, bind
from cnndsl.model.inits import choose_inits
from cnndsl.model.ir import Graph, Node

INPUT = -1
MAX_NOTES = 5  # call sites shown for an error deep inside blocks


class _Scope:
    """One naming scope: a dotted prefix and the next automatic index."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index = 0
        self.joins: dict[str, int] = {}  # concat/add names handed out so far

    def full(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def next(self, label: S.Label | None) -> str:
        """The full name of the next statement: its label, or its index (which it uses up either way)."""
        name = label.name if label is not None else str(self.index)
        self.index += 1
        return self.full(name)


def check(spec: S.Spec) -> Graph:
    """Expand and check a parsed spec; raise CheckError at the first mistake."""
    return _Checker(spec).run()


class _Checker:
    def __init__(self, spec: S.Spec) -> None:
        self.spec = spec
        self.blocks: dict[str, S.BlockDef] = {}
        self.names: dict[str, Span | None] = {}
        self.calls: list[tuple[str, Span]] = []  # (block, call site), outermost first
        self.graph: Graph | None = None
        self.current: Span | None = None  # the statement being checked, for errors found late

    # -- errors -------------------------------------------------------------------------
    def error(self, message: str, span: Span | None, hint: str | None = None) -> CheckError:
        calls = list(reversed(self.calls))
        notes = [(f"in block '{name}', called from here", site) for name, site in calls[:MAX_NOTES]]
        if len(calls) > MAX_NOTES:
            notes.append((f"... and {len(calls) - MAX_NOTES} more enclosing block calls", None))
        return CheckError(message, span, hint, tuple(notes), path=self.spec.source.path)

    # -- entry ----------------------------------------------------------------------------
    def run(self) -> Graph:
        spec = self.spec
        if spec.headers > 1:
            raise self.error("more than one `network` line", spec.name_span, "a spec describes one network")
        self.define_blocks()
        shape = self.input_shape()
        name = spec.name or _stem(spec.source.path)
        self.graph = Graph(name, spec.title, shape, [], spec.source.text, spec.source.path)
        self.network_meta()
        scope = _Scope("")
        x = INPUT
        try:
            for stmt in spec.body:
                x = self.stmt(stmt, x, scope, Env({}))
        except RecursionError:
            raise self.error("blocks and groups nest too deeply to check", self.current,
                             "flatten the structure (use repeat rather than nesting)") from None
        if not self.graph.nodes:
            raise self.error("the network has no layers", spec.inputs[0].span, "add layers after the `input` line")
        choose_inits(self.graph)
        return self.graph

    def network_meta(self) -> None:
        """`year=` and `top5=` on the network line (for the lineage table)."""
        for a in self.spec.meta:
            value = self.eval(a.value, Env({}))
            if a.name == "year":
                if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= 2100:
                    raise self.error(f"year must be a year such as 1998, not {value!r}", a.value.span)
                self.graph.year = value
            elif a.name == "top5":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                    raise self.error(f"top5 is a top-5 error in percent (0 to 100), not {value!r}", a.value.span)
                self.graph.top5 = float(value)
            else:
                raise self.error(f"unknown network option '{a.name}'", a.span,
                                 did_you_mean(a.name, ["year", "top5"]) or "the network line takes year= and top5=")

    def define_blocks(self) -> None:
        for block in self.spec.blocks:
            if block.name in self.blocks:
                first = self.blocks[block.name].name_span
                raise self.error(f"block '{block.name}' is defined twice (first on line {first.line})",
                                 block.name_span, "rename one of them")
            if block.name in REGISTRY:
                raise self.error(f"block '{block.name}' has the name of a layer kind", block.name_span,
                                 "choose another name for the block")
            seen, defaults = set(), False
            for p in block.params:
                if p.name in seen:
                    raise self.error(f"parameter '{p.name}' is declared twice", p.span)
                if p.default is None and defaults:
                    raise self.error(f"parameter '{p.name}' has no default but follows one that has",
                                     p.span, "put parameters with defaults last")
                defaults = defaults or p.default is not None
                seen.add(p.name)
            self.check_defaults(block)
            self.blocks[block.name] = block

    def check_defaults(self, block: S.BlockDef) -> None:
        """A default may use only the parameters declared before it (they are bound in order)."""
        order = [p.name for p in block.params]
        for k, p in enumerate(block.params):
            for word in names(p.default) if p.default is not None else ():
                if word.id in order[k:]:
                    where = "itself" if word.id == p.name else "a parameter declared after it"
                    raise self.error(f"the default of '{p.name}' uses '{word.id}', {where}", word.span,
                                     f"a default may use only earlier parameters: declare '{word.id}' "
                                     f"before '{p.name}'" if word.id != p.name else
                                     "a default may use only earlier parameters")

    def input_shape(self) -> tuple[int, ...]:
        spec = self.spec
        if not spec.inputs:
            first = spec.body[0].span if spec.body else Span(spec.source, 1, 1, 1, 2)
            raise self.error("the spec has no `input` line", first,
                             "add one before the layers, e.g. `input 3x224x224` (channels x height x width)")
        if len(spec.inputs) > 1:
            raise self.error("more than one `input` line", spec.inputs[1].span, "a network has one input")
        decl = spec.inputs[0]
        values = [self.eval(a.value, Env({})) for a in decl.args]
        if len(values) == 1 and isinstance(values[0], int) and not isinstance(values[0], bool):
            values = [(values[0],)]
        if len(values) != 1 or not isinstance(values[0], tuple) or len(values[0]) not in (1, 3) \
                or decl.args[0].name is not None:
            raise self.error("input needs CxHxW (e.g. 1x28x28 or 3x224x224), or a feature count (784)",
                             decl.span, "channels first: a grey image has 1 channel, colour 3")
        shape = values[0]
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise self.error(f"input sizes must be positive integers, not {fmt_shape(shape)}", decl.args[0].span)
        count = 1
        for d in shape:
            count *= d
        if count > limits.MAX_INPUT_VALUES:
            raise self.error(f"input {fmt_shape(shape)} has {count:,} values per sample "
                             f"({count * 4 / 1e9:,.1f} GB as float32); the limit is {limits.MAX_INPUT_VALUES:,}",
                             decl.args[0].span, "set CNNDSL_MAX_INPUT to raise the limit")
        return shape

    # -- values ---------------------------------------------------------------------------
    def eval(self, expr: S.Expr, env: Env):
        try:
            return evaluate(expr, env)
        except RuleError as exc:
            raise self.error(exc.message, getattr(exc, "span", None) or expr.span, exc.hint) from None

    def shape(self, x: int) -> tuple[int, ...]:
        return self.graph.input_shape if x == INPUT else self.graph.nodes[x].out_shape

    # -- statements -----------------------------------------------------------------------
    def seq(self, stmts, x: int, scope: _Scope, env: Env) -> int:
        for stmt in stmts:
            x = self.stmt(stmt, x, scope, env)
        return x

    def stmt(self, stmt: S.Stmt, x: int, scope: _Scope, env: Env) -> int:
        self.current = stmt.span
        if isinstance(stmt, S.Layer):
            if stmt.kind in self.blocks:
                return self.call(stmt, x, scope, env)
            return self.layer(stmt, x, scope, env)
        if isinstance(stmt, S.Group):
            return self.seq(stmt.body, x, _Scope(self.open(scope, stmt)), env)
        if isinstance(stmt, S.Repeat):
            return self.repeat(stmt, x, scope, env)
        inner = _Scope(self.open(scope, stmt)) if stmt.label is not None else scope
        if isinstance(stmt, S.Concat):
            return self.concat(stmt, x, inner, env)
        return self.residual(stmt, x, inner, env)

    def layer(self, stmt: S.Layer, x: int, scope: _Scope, env: Env) -> int:
        cls = REGISTRY.get(stmt.kind)
        if cls is None:
            known = set(REGISTRY) | set(self.blocks)
            hint = did_you_mean(stmt.kind, known) or "see the README's language reference for the layer kinds"
            raise self.error(f"unknown layer '{stmt.kind}'", stmt.kind_span, hint)
        args = [(a.name, self.eval(a.value, env), i) for i, a in enumerate(stmt.args)]
        try:
            layer, where = bind(cls, args)
        except RuleError as exc:
            raise self.rule_error(exc, stmt, {}) from None
        y = self.add(scope.next(stmt.label), layer, (x,), stmt, where)
        act = getattr(layer, "act", None) if cls.fused_act else None
        if act is not None:
            act_layer, _ = bind(REGISTRY[act], [])
            y = self.add(scope.next(None), act_layer, (y,), stmt, where)
        return y

    def call(self, stmt: S.Layer, x: int, scope: _Scope, env: Env) -> int:
        block = self.blocks[stmt.kind]
        chain = [name for name, _ in self.calls]
        if block.name in chain:
            cycle = " -> ".join(chain[chain.index(block.name):] + [block.name])
            raise self.error(f"block '{block.name}' calls itself ({cycle})", stmt.kind_span,
                             "a block cannot contain itself; use `repeat` for repeated structure")
        if len(self.calls) >= limits.MAX_BLOCK_DEPTH:
            raise self.error(f"blocks nest more than {limits.MAX_BLOCK_DEPTH} deep", stmt.kind_span)
        given = self.block_args(block, stmt, env)
        name = self.open(scope, stmt)
        self.calls.append((block.name, stmt.span))
        try:
            return self.seq(block.body, x, _Scope(name), self.block_env(block, stmt, given))
        finally:
            self.calls.pop()

    def block_args(self, block: S.BlockDef, stmt: S.Layer, env: Env) -> dict:
        """The arguments written at a call, evaluated in the caller's scope, by parameter name."""
        params = [p.name for p in block.params]
        usage = _usage(block)
        given: dict[str, object] = {}
        positional = 0
        for a in stmt.args:
            value = self.eval(a.value, env)
            if a.name is None:
                if positional >= len(params):
                    hint = usage
                    if isinstance(value, tuple) and len(stmt.args) == 1:
                        hint = f"arguments are separated by spaces: `{block.name} {' '.join(map(str, value))}`"
                    raise self.error(f"block '{block.name}' takes {len(params)} argument"
                                     f"{'s' if len(params) != 1 else ''}, got more", a.span, hint)
                key = params[positional]
                positional += 1
            else:
                if a.name not in params:
                    raise self.error(f"block '{block.name}' has no parameter '{a.name}'", a.span,
                                     did_you_mean(a.name, params) or usage)
                key = a.name
            if key in given:
                raise self.error(f"parameter '{key}' is given twice", a.span, usage)
            given[key] = value
        for p in block.params:
            if p.name not in given and p.default is None:
                raise self.error(f"block '{block.name}' needs a value for '{p.name}'", stmt.kind_span, usage)
        return given

    def block_env(self, block: S.BlockDef, stmt: S.Layer, given: dict) -> Env:
        """The block's parameters: written values, then defaults (which may use earlier parameters)."""
        values = {}
        for p in block.params:
            values[p.name] = given[p.name] if p.name in given else self.eval(p.default, Env(values))
        return Env(values)

    def repeat(self, stmt: S.Repeat, x: int, scope: _Scope, env: Env) -> int:
        count = self.eval(stmt.count, env)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise self.error(f"repeat needs a count >= 0, not {count!r}", stmt.count.span)
        if count > limits.MAX_LAYERS:
            raise self.error(f"repeat {count:,} exceeds the limit of {limits.MAX_LAYERS:,} layers", stmt.count.span,
                             "set CNNDSL_MAX_LAYERS to raise the limit")
        target = _Scope(self.open(scope, stmt)) if stmt.label is not None else scope
        for _ in range(count):
            x = self.seq(stmt.body, x, target, env)
        return x

    def concat(self, stmt: S.Concat, x: int, scope: _Scope, env: Env) -> int:
        if not stmt.branches:
            raise self.error("concat has no branches", stmt.span, "write one statement (or { group }) per branch")
        outs = tuple(self.stmt(branch, x, scope, env) for branch in stmt.branches)
        spans = {f"#{i}": b.span for i, b in enumerate(stmt.branches)}
        return self.add(self.internal(scope, "concat"), ConcatChannels(), outs, stmt, {}, spans)

    def residual(self, stmt: S.Residual, x: int, scope: _Scope, env: Env) -> int:
        y = self.seq(stmt.body, x, scope, env)
        shortcut = x
        if self.shape(y) != self.shape(x):
            if stmt.shortcut is None:
                raise self.error(
                    f"residual add: the body gives {fmt_shape(self.shape(y))} but its input is "
                    f"{fmt_shape(self.shape(x))}", stmt.span,
                    "add a projection used when shapes differ: `} shortcut { conv C 1x1 stride=S }`")
            shortcut = self.seq(stmt.shortcut, x, _Scope(scope.full(stmt.shortcut_name)), env)
        return self.add(self.internal(scope, "add"), AddResidual(), (y, shortcut), stmt, {})

    def open(self, scope: _Scope, stmt) -> str:
        """Name a new sub-scope (group, block call, labelled repeat/concat/residual) and claim it."""
        name = scope.next(stmt.label)
        self.claim(name, stmt)
        return name

    def claim(self, name: str, stmt) -> None:
        """Record a name, or fail if a layer or scope already has it."""
        if name in self.names:
            first = self.names[name]
            where_first = f" (first used on line {first.line})" if first is not None else ""
            label = getattr(stmt, "label", None)
            raise self.error(f"the name '{name}' is used twice{where_first}",
                             label.span if label is not None else stmt.span, "give it a different label")
        self.names[name] = getattr(stmt, "span", None)

    def internal(self, scope: _Scope, kind: str) -> str:
        """The name of a join: concat, add, then concat_1, add_1, ... in its scope."""
        while True:
            n = scope.joins.get(kind, 0)
            scope.joins[kind] = n + 1
            name = scope.full(kind if n == 0 else f"{kind}_{n}")
            if name not in self.names:
                return name

    # -- nodes ----------------------------------------------------------------------------
    def add(self, name: str, layer, inputs: tuple[int, ...], stmt, where: dict, spans=None) -> int:
        self.claim(name, stmt)
        if len(self.graph.nodes) >= limits.MAX_LAYERS:
            raise self.error(f"the network expands to more than {limits.MAX_LAYERS:,} layers", stmt.span,
                             "check repeat counts; set CNNDSL_MAX_LAYERS to raise the limit")
        shapes = [self.shape(i) for i in inputs]
        try:
            out = layer.infer(shapes)
            params = tuple(layer.params(name, shapes, out))
            macs = layer.macs(shapes, out)
        except RuleError as exc:
            raise self.rule_error(exc, stmt, where, spans) from None
        if min(out) <= 0:
            raise self.error(f"{layer.kind} gives an empty output {fmt_shape(out)} from {fmt_shape(shapes[0])}",
                             stmt.span, "use a smaller stride or kernel, or pad the input")
        node = Node(name, layer.kind, layer, inputs, tuple(shapes), tuple(out), params, macs,
                    stmt.span, tuple(site for _, site in self.calls))
        self.graph.nodes.append(node)
        return len(self.graph.nodes) - 1

    def rule_error(self, exc: RuleError, stmt, where: dict, spans=None) -> CheckError:
        span = stmt.span
        field = exc.field
        if spans and field in spans:
            span = spans[field]
        elif field == "#kind":
            span = stmt.kind_span
        elif field and field.startswith("#"):
            span = stmt.args[int(field[1:])].span
        elif field in where:
            span = stmt.args[where[field]].span
        elif isinstance(stmt, S.Layer):
            span = stmt.kind_span
        return self.error(exc.message, span, exc.hint)


def _usage(block: S.BlockDef) -> str:
    return f"usage: {block.name} " + " ".join(p.name if p.default is None else f"[{p.name}=...]"
                                              for p in block.params)


def _stem(path: str) -> str:
    base = os.path.basename(path)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem or "network"
