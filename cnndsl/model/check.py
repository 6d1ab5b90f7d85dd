"""Stage 2, check: syntax.Spec -> ir.Graph. Expands blocks and repeats, names, infers, counts."""

from __future__ import annotations

import os

from cnndsl.errors import CheckError, CheckWarning, RuleError, did_you_mean
from cnndsl.lang import limits
from cnndsl.lang import syntax as S
from cnndsl.lang.show import fmt_shape, show
from cnndsl.lang.source import Span
from cnndsl.lang.values import Env, evaluate, names, truth
from cnndsl.layers import (
    REGISTRY,
    AddBranches,
    AddResidual,
    ConcatChannels,
    MulBranches,
    MulGate,
    SplitChannels,
    bind,
)
from cnndsl.layers.base import TensorRef, schema
from cnndsl.layers.crop import Crop
from cnndsl.model.inits import choose_inits
from cnndsl.model.ir import MAIN_OUTPUT, Graph, GraphOutput, Node

INPUT = -1
SPLICE = "_"  # the label of a statement that opens no scope: `_: { ... }`, `_: block_call`
JOINS = {"concat": ConcatChannels, "add": AddBranches, "mul": MulBranches}
MAX_NOTES = 5  # call sites shown for an error deep inside blocks


class _Scope:
    """One naming scope: a dotted prefix and the next automatic index."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index = 0
        self.joins: dict[str, int] = {}  # concat/add names handed out so far

    def full(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def next(self, label: str | None) -> str:
        """The full name of the next statement: its label, or its index (which it uses up either way)."""
        name = label if label is not None else str(self.index)
        self.index += 1
        return self.full(name)


def check(spec: S.Spec, variant: str | None = None, settings: dict | None = None) -> Graph:
    """Expand and check a parsed spec; raise CheckError at the first mistake. ``variant`` names a
    `variant` line of the spec; ``settings`` sets network parameters by name (after the variant)."""
    return _Checker(spec, variant, settings or {}).run()


class _Checker:
    def __init__(self, spec: S.Spec, variant: str | None = None, settings: dict | None = None) -> None:
        self.spec = spec
        self.variant = variant
        self.settings = settings or {}
        self.globals = Env({})
        self.warnings: list[CheckWarning] = []
        self.blocks: dict[str, S.BlockDef] = {}
        self.names: dict[str, Span | None] = {}
        self.calls: list[tuple[str, Span]] = []  # (block, call site), outermost first
        self.graph: Graph | None = None
        self.current: Span | None = None  # the statement being checked, for errors found late
        self.tensors: dict[str, int] = {}  # full name of a finished labelled statement -> its output
        self.extra: list[GraphOutput] = []  # `output` heads, in written order

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
        meta = self.network_params()
        shape = self.input_shape()
        name = self.variant or spec.name or _stem(spec.source.path)
        self.graph = Graph(name, spec.title, shape, [], spec.source.text, spec.source.path, warnings=self.warnings)
        self.network_meta(meta)
        scope = _Scope("")
        x = INPUT
        try:
            for stmt in spec.body:
                x = self.stmt(stmt, x, scope, self.globals)
        except RecursionError:
            raise self.error("blocks and groups nest too deeply to check", self.current,
                             "flatten the structure (use repeat rather than nesting)") from None
        if not self.graph.nodes:
            raise self.error("the network has no layers", spec.inputs[0].span, "add layers after the `input` line")
        if x == INPUT:
            raise self.error("the network's output is its input", self.current,
                             "the last statement goes on from the input: end with the layers that make the output")
        self.graph.outputs = [GraphOutput(MAIN_OUTPUT, x)] + self.extra
        self.unused_warnings()
        choose_inits(self.graph)
        return self.graph

    def unused_warnings(self) -> None:
        """A warning for each statement whose output reaches no output (after a `from` elsewhere)."""
        nodes = self.graph.nodes
        live = set()
        todo = [o.index for o in self.graph.outputs if o.index >= 0]
        while todo:
            i = todo.pop()
            if i not in live:
                live.add(i)
                todo.extend(j for j in nodes[i].inputs if j >= 0)
        seen = set()
        for i, node in enumerate(nodes):
            if i not in live and node.span is not None and node.span not in seen:
                seen.add(node.span)
                self.warnings.append(CheckWarning(
                    f"the output of '{node.name}' is never used", node.span,
                    "a `from` after it goes on from another tensor; remove the statement, or join it "
                    "(`concat`, `add`) or make it an output", path=self.spec.source.path))

    def network_params(self) -> list[S.Arg]:
        """The network's parameters: defaults, then the chosen variant's values, then settings.
        Returns the meta options (year=, top5=) in force: the network line's, then the variant's."""
        spec = self.spec
        declared = {p.name: p for p in spec.params}
        seen: dict[str, S.Variant] = {}
        for v in spec.variants:
            if v.name in seen:
                raise self.error(f"variant '{v.name}' is defined twice (first on line {seen[v.name].span.line})",
                                 v.name_span, "rename one of them")
            seen[v.name] = v
        for p in spec.params:
            if p.default is None:
                raise self.error(f"network parameter '{p.name}' needs a default (the network as written)", p.span,
                                 f"write `{p.name}=VALUE`; variants and --set change it")
        meta = list(spec.meta)
        chosen: dict[str, object] = {}
        for v in spec.variants:  # every variant line is checked, the chosen one or not
            for a in v.args:
                if a.name is None:
                    raise self.error("a variant sets parameters by name", a.span, "write NAME=VALUE, e.g. width=1.2")
                if a.name not in declared and a.name not in ("year", "top5"):
                    raise self.error(f"variant sets '{a.name}', which is not a network parameter", a.span,
                                     did_you_mean(a.name, declared) or _net_usage(spec))
                value = self.eval(a.value, Env({}))
                if v.name == self.variant and a.name in declared:
                    chosen[a.name] = value
        if self.variant is not None:
            if self.variant not in seen:
                raise self.error(f"the spec has no variant '{self.variant}'", spec.name_span or
                                 (spec.inputs[0].span if spec.inputs else None),
                                 did_you_mean(self.variant, seen) or
                                 (f"its variants: {', '.join(seen)}" if seen else "it defines no `variant` lines"))
            picked = {a.name: a for a in seen[self.variant].args if a.name in ("year", "top5")}
            meta = [m for m in meta if m.name not in picked] + list(picked.values())
        for key, value in self.settings.items():
            if key not in declared:
                raise self.error(f"--set {key}: the network has no parameter '{key}'", spec.name_span,
                                 did_you_mean(key, declared) or _net_usage(spec))
            chosen[key] = value
        values: dict[str, object] = {}
        for p in spec.params:
            values[p.name] = chosen[p.name] if p.name in chosen else self.eval(p.default, Env(values))
        self.globals = Env(values)
        return meta

    def network_meta(self, meta: list[S.Arg]) -> None:
        """`year=` and `top5=` on the network line (for the lineage table)."""
        for a in meta:
            value = self.eval(a.value, self.globals)
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
        values = [self.eval(a.value, self.globals) for a in decl.args]
        if len(values) == 1 and isinstance(values[0], int) and not isinstance(values[0], bool):
            values = [(values[0],)]
        if len(values) != 1 or not isinstance(values[0], tuple) or len(values[0]) not in (1, 3) \
                or decl.args[0].name is not None:
            raise self.error("input needs CxHxW (e.g. 1x28x28 or 3x224x224), or a feature count (784)",
                             decl.span, "channels first: a grey image has 1 channel, colour 3")
        shape = values[0]
        self.input_warning(shape, decl)
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

    def input_warning(self, shape: tuple, decl: S.InputDecl) -> None:
        """`input 32x32x3` checks (32 channels of 32x3) but is almost surely channels last."""
        if len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] not in (1, 2, 3, 4) and shape[0] >= 8 \
                and shape[1] >= 8:
            h, w, c = shape
            self.warnings.append(CheckWarning(
                f"input {fmt_shape(shape)} reads as {h} channels of {w}x{c} pixels", decl.args[0].span,
                f"cnndsl is channels first (as PyTorch and ONNX); for a {h}x{w} image of {c} channel"
                f"{'s' if c > 1 else ''} write `input {c}x{h}x{w}`", path=self.spec.source.path))

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
        env = env.at(self.shape(x))
        if isinstance(stmt, S.Layer):
            kind = self.kind_of(stmt, env)
            if kind is None:  # `act` where the parameter act is none: left out, as PyTorch leaves it
                return x
            if kind in self.blocks:
                return self.call(stmt, kind, x, scope, env)
            return self.layer(stmt, kind, x, scope, env)
        if isinstance(stmt, S.If):
            taken = stmt.then if self.condition(stmt.cond, env) else stmt.otherwise
            return self.seq(taken, x, scope, env)
        if isinstance(stmt, S.From):
            return self.resolve(stmt.path, scope, env, stmt.span)
        if isinstance(stmt, S.Output):
            return self.output(stmt, x, scope, env)
        if isinstance(stmt, S.Group):
            inner = self.open(scope, stmt, env)
            return self.done(inner, scope, self.seq(stmt.body, x, inner, env))
        if isinstance(stmt, S.Repeat):
            return self.repeat(stmt, x, scope, env)
        if isinstance(stmt, S.Gate):
            inner = self.open(scope, stmt, env)
            return self.done(inner, scope, self.gate(stmt, x, inner, env))
        if isinstance(stmt, S.Residual) and stmt.when is not None and not self.condition(stmt.when, env):
            inner = self.open(scope, stmt, env) if stmt.label else scope
            return self.done(inner, scope, self.seq(stmt.body, x, inner, env))
        inner = self.open(scope, stmt, env) if stmt.label is not None else scope
        if isinstance(stmt, S.Concat):
            return self.done(inner, scope, self.concat(stmt, x, inner, env))
        return self.done(inner, scope, self.residual(stmt, x, inner, env))

    def done(self, inner: _Scope, outer: _Scope, y: int) -> int:
        """Record ``y`` as the tensor of a statement that opened the scope ``inner`` (so that a
        later `from` can name it); return it."""
        if inner is not outer:
            self.tensors[inner.prefix] = y
        return y

    # -- references ----------------------------------------------------------------------
    def resolve(self, path: tuple[S.Label, ...], scope: _Scope, env: Env, span: Span) -> int:
        """The tensor a reference names: the innermost enclosing scope's statement so labelled, or,
        for `input` where no statement is so labelled, the network's input. A one-word reference
        may be a block parameter holding a label (`from skip` in a block called with skip=down3)."""
        words = [self.label(part, env) for part in path]
        if len(words) == 1 and path[0].parts is None and isinstance(env.values.get(words[0]), str):
            words = env.values[words[0]].split(".")
        name = ".".join(words)
        prefix = scope.prefix.split(".") if scope.prefix else []
        for k in range(len(prefix), -1, -1):
            full = ".".join(prefix[:k] + [name])
            if full in self.tensors:
                self.graph.refs.setdefault(self.tensors[full], full)
                return self.tensors[full]
        if name == "input":
            self.graph.refs.setdefault(INPUT, "input")
            return INPUT
        raise self.reference_error(name, scope, span)

    def reference_error(self, name: str, scope: _Scope, span: Span) -> CheckError:
        prefix = scope.prefix.split(".") if scope.prefix else []
        for k in range(len(prefix), -1, -1):
            full = ".".join(prefix[:k] + [name])
            if full in self.names:
                return self.error(f"'{name}' is not finished here: a statement cannot go on from its own output",
                                  span, "name a tensor made before the statement that holds this one")
        later = _labelled(self.spec, name.split(".")[-1])
        if later is not None and (later.line, later.col) > (span.line, span.col):
            return self.error(f"'{name}' is labelled later (line {later.line}); `from` names a tensor made "
                              "before it", span, "move the reference after that statement, or name an earlier one")
        known = sorted({key.split(".")[-1] for key in self.tensors} | set(self.tensors))
        return self.error(f"no statement before this one is labelled '{name}'", span,
                          did_you_mean(name, known) or "label the statement whose output you mean "
                          "(`down3: ...`) and name it here; `input` is the network's input")

    def tensor_args(self, cls, args: list, stmt: S.Layer, scope: _Scope, env: Env) -> list:
        """Arguments that name a tensor (upsample's to=) become TensorRefs that carry its shape."""
        fields = {f.name for f in schema(cls) if f.metadata.get("tensor")}
        if not fields:
            return args
        out = []
        for key, value, index in args:
            if key in fields and isinstance(value, str) and not isinstance(value, TensorRef):
                a = stmt.args[index]
                path = (S.Label(value, a.value.span),) if not isinstance(a.value, S.Name) else \
                    (S.Label(a.value.id, a.value.span),)
                value = TensorRef(value, self.shape(self.resolve(path, scope, env, a.value.span)))
            out.append((key, value, index))
        return out

    # -- outputs -------------------------------------------------------------------------
    def output(self, stmt: S.Output, x: int, scope: _Scope, env: Env) -> int:
        """`aux1: output { ... }`: another output made from here; the flow goes on from ``x``."""
        label = self.label(stmt.label, env)
        if label is None or label == SPLICE:
            raise self.error("an output needs a label: it names the output, in the ONNX model too", stmt.span,
                             "write `aux1: output { ... }`")
        if label in ("input", MAIN_OUTPUT):
            raise self.error(f"an output cannot be called '{label}': the model's {label} has that name",
                             stmt.label.span, "choose another label, e.g. aux1")
        inner = self.open(scope, stmt, env)
        y = self.done(inner, scope, self.seq(stmt.body, x, inner, env))
        self.extra.append(GraphOutput(inner.prefix, y, stmt.train, stmt.span))
        return x

    def condition(self, expr: S.Expr, env: Env) -> bool:
        try:
            return truth(expr, env)
        except RuleError as exc:
            raise self.error(exc.message, getattr(exc, "span", None) or expr.span, exc.hint) from None

    def kind_of(self, stmt: S.Layer, env: Env) -> str | None:
        """The kind a layer statement names: itself, or, for a parameter holding a kind (`act` in a
        block called with act=hardswish), the kind it holds; None for a parameter holding none."""
        if stmt.kind not in env.values:
            return stmt.kind
        value = env.values[stmt.kind]
        if not isinstance(value, str) and value is not None and (stmt.kind in REGISTRY or stmt.kind in self.blocks):
            return stmt.kind  # `dropout dropout` with a parameter dropout=0.2: the kind, given the parameter
        if value is None and not stmt.args:
            return None
        if isinstance(value, str) and (value in REGISTRY or value in self.blocks):
            return value
        raise self.error(f"'{stmt.kind}' is a parameter holding {show(value)}, not a layer kind", stmt.kind_span,
                         f"pass a layer kind or block name for '{stmt.kind}' (e.g. {stmt.kind}=relu), or none "
                         "to leave the statement out")

    def layer(self, stmt: S.Layer, kind: str, x: int, scope: _Scope, env: Env) -> int:
        cls = REGISTRY.get(kind)
        if cls is None:
            raise self.error(f"unknown layer '{kind}'", stmt.kind_span, self.unknown_kind_hint(stmt, env))
        args = [(a.name, self.eval(a.value, env), i) for i, a in enumerate(stmt.args)]
        args = self.tensor_args(cls, args, stmt, scope, env)
        try:
            layer, where = bind(cls, args)
        except RuleError as exc:
            raise self.rule_error(exc, stmt, {}) from None
        label = self.label(stmt.label, env)
        name = scope.next(None if label == SPLICE else label)
        y = self.add(name, layer, (x,), stmt, where)
        act = getattr(layer, "act", None) if cls.fused_act else None
        if act is not None:
            act_layer, _ = bind(REGISTRY[act], [])
            y = self.add(scope.next(None), act_layer, (y,), stmt, where)
        self.tensors[name] = y  # the statement's output: after its fused activation
        return y

    def unknown_kind_hint(self, stmt: S.Layer, env: Env) -> str:
        known = set(REGISTRY) | set(self.blocks)
        return did_you_mean(stmt.kind, known) or "see the README's language reference for the layer kinds"

    def label(self, label: S.Label | None, env: Env) -> str | None:
        """A statement's label as a name: written, or with its `{...}` holes filled in."""
        if label is None:
            return None
        if label.parts is None:
            return label.name
        text = "".join(part if isinstance(part, str) else _label_text(self.eval(part, env), part, self)
                       for part in label.parts)
        bad = next((c for c in text if c == "." or not c.isprintable() or c.isspace()), None) if text else ""
        if bad is not None:
            what = "is empty" if bad == "" else f"holds {bad!r}"
            raise self.error(f"the label {text!r} {what}", label.span,
                             "a label is one part of a dotted name: no dots, blanks or control characters")
        return text

    def call(self, stmt: S.Layer, kind: str, x: int, scope: _Scope, env: Env) -> int:
        block = self.blocks[kind]
        chain = [name for name, _ in self.calls]
        if block.name in chain:
            cycle = " -> ".join(chain[chain.index(block.name):] + [block.name])
            raise self.error(f"block '{block.name}' calls itself ({cycle})", stmt.kind_span,
                             "a block cannot contain itself; use `repeat` for repeated structure")
        if len(self.calls) >= limits.MAX_BLOCK_DEPTH:
            raise self.error(f"blocks nest more than {limits.MAX_BLOCK_DEPTH} deep", stmt.kind_span)
        given = self.block_args(block, stmt, env)
        inner = self.open(scope, stmt, env)
        if inner is not scope:  # the call as written, its arguments' values evaluated: bottleneck(128, stride=2)
            params, parts = iter(p.name for p in block.params), []
            for a in stmt.args:
                parts.append(show(given[next(params)]) if a.name is None else f"{a.name}={show(given[a.name])}")
            self.graph.calls[inner.prefix] = f"{block.name}({', '.join(parts)})" if parts else block.name
        self.calls.append((block.name, stmt.span))
        try:
            y = self.seq(block.body, x, inner, self.block_env(block, given, env))
        finally:
            self.calls.pop()
        return self.done(inner, scope, y)

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

    def block_env(self, block: S.BlockDef, given: dict, env: Env) -> Env:
        """The block's names: the network's parameters, then the block's (written values, then
        defaults, which may use earlier parameters and the call's input), at the call's input."""
        inner = Env(dict(self.globals.values), env.shape)
        for p in block.params:
            value = given[p.name] if p.name in given else self.eval(p.default, inner)
            inner = inner.with_values({p.name: value})
        return inner

    def repeat(self, stmt: S.Repeat, x: int, scope: _Scope, env: Env) -> int:
        count = self.eval(stmt.count, env)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise self.error(f"repeat needs a count >= 0, not {count!r}", stmt.count.span)
        if count > limits.MAX_LAYERS:
            raise self.error(f"repeat {count:,} exceeds the limit of {limits.MAX_LAYERS:,} layers", stmt.count.span,
                             "set CNNDSL_MAX_LAYERS to raise the limit")
        target = self.open(scope, stmt, env) if stmt.label is not None else scope
        for k in range(count):
            inner = env.with_values({stmt.var: k}) if stmt.var is not None else env
            x = self.seq(stmt.body, x, target, inner)
        return self.done(target, scope, x)

    def concat(self, stmt: S.Concat, x: int, scope: _Scope, env: Env) -> int:
        """A join of branches: `concat`, `add` or `mul` (with `split`, `crop`)."""
        if not stmt.branches:
            raise self.error(f"{stmt.op} has no branches", stmt.span, "write one statement (or { group }) per branch")
        if stmt.split and stmt.op != "concat":
            raise self.error(f"`split` goes with concat, not {stmt.op}", stmt.span,
                             "`concat split { ... }` gives each branch a share of the channels")
        inputs = [x] * len(stmt.branches)
        if stmt.split:
            inputs = self.split(stmt, x, scope)
        outs = tuple(self.stmt(branch, xi, scope, env) for branch, xi in zip(stmt.branches, inputs, strict=True))
        outs = self.crop(stmt, outs, scope) if stmt.crop else outs
        self.join_sizes(stmt, outs)
        spans = {f"#{i}": b.span for i, b in enumerate(stmt.branches)}
        return self.add(self.internal(scope, stmt.op), JOINS[stmt.op](), outs, stmt, {}, spans)

    def crop(self, stmt: S.Concat, outs: tuple[int, ...], scope: _Scope) -> tuple[int, ...]:
        """`concat crop`: each branch center-cropped to the smallest height and width among them."""
        shapes = [self.shape(i) for i in outs]
        for i, s in enumerate(shapes):
            if len(s) != 3:
                raise self.error(f"{stmt.op} crop: branch {i + 1} gives {fmt_shape(s)}, which has no height and "
                                 "width", stmt.branches[i].span, "crop joins CxHxW maps")
        h, w = min(s[1] for s in shapes), min(s[2] for s in shapes)
        cropped = []
        for i, s in zip(outs, shapes, strict=True):
            if s[1:] != (h, w):
                i = self.add(self.internal(scope, "crop"), bind(Crop, [(None, (h, w), 0)])[0], (i,), stmt, {})
            cropped.append(i)
        return tuple(cropped)

    def join_sizes(self, stmt: S.Concat, outs: tuple[int, ...]) -> None:
        """Branches whose height and width differ: an error naming both shapes and where each was
        made, and how to fix it."""
        shapes = [self.shape(i) for i in outs]
        first = shapes[0]
        for k, s in enumerate(shapes[1:], 1):
            per_channel = stmt.op != "concat" and (1, 1) in (s[1:], first[1:])  # broadcast by add and mul
            if len(s) == len(first) == 3 and s[1:] != first[1:] and not per_channel:
                where = [self.made_where(outs[0]), self.made_where(outs[k])]
                crop = "" if stmt.crop else (f"to center-crop the larger to the smaller, as U-Net does, write "
                                             f"`{stmt.op} crop {{ ... }}`; ")
                raise self.error(
                    f"{stmt.op}: branch 1 gives {fmt_shape(first)} ({where[0]}) but branch {k + 1} gives "
                    f"{fmt_shape(s)} ({where[1]}); their height and width must match",
                    stmt.branches[k].span, crop + "otherwise check the strides and padding on both paths, or "
                    "`upsample to=LABEL` the smaller")

    def made_where(self, index: int) -> str:
        """The statement that made tensor ``index``, looking through identities (a branch that
        passes its input on): 'up', line 4."""
        while index != INPUT and self.graph.nodes[index].kind == "identity" and index not in self.graph.refs:
            index = self.graph.nodes[index].inputs[0]
        if index == INPUT:
            return "the input"
        name = self.graph.refs.get(index)
        if name is not None and self.names.get(name) is not None:  # named by a `from`: as written there
            return f"'{name}', line {self.names[name].line}"
        node = self.graph.nodes[index]
        return f"'{node.name}', line {node.span.line}" if node.span is not None else f"'{node.name}'"

    def split(self, stmt: S.Concat, x: int, scope: _Scope) -> list[int]:
        """`concat split`: one equal share of the input's channels per branch (PyTorch's chunk)."""
        n = len(stmt.branches)
        return [self.add(self.internal(scope, "split"), SplitChannels(n, i), (x,), stmt, {}) for i in range(n)]

    def residual(self, stmt: S.Residual, x: int, scope: _Scope, env: Env) -> int:
        y = self.seq(stmt.body, x, scope, env)
        shortcut = x
        if self.shape(y) != self.shape(x):
            if stmt.shortcut is None:
                raise self.error(
                    f"residual add: the body gives {fmt_shape(self.shape(y))} but its input is "
                    f"{fmt_shape(self.shape(x))}", stmt.span,
                    "add a projection used when shapes differ (`} shortcut { conv C 1x1 stride=S }`); or, "
                    "where the architecture adds nothing when the shape changes (MobileNet), "
                    "`residual if COND { ... }` or no residual")
            shortcut = self.seq(stmt.shortcut, x, _Scope(scope.full(stmt.shortcut_name)), env)
        return self.add(self.internal(scope, "add"), AddResidual(), (y, shortcut), stmt, {})

    def gate(self, stmt: S.Gate, x: int, scope: _Scope, env: Env) -> int:
        y = self.seq(stmt.body, x, scope, env)
        return self.add(self.internal(scope, "mul"), MulGate(), (x, y), stmt, {})

    def open(self, scope: _Scope, stmt, env: Env) -> _Scope:
        """A new sub-scope (group, block call, gate, labelled repeat/concat/residual), named and
        claimed; or, for the label `_`, the enclosing scope itself (its names continue there)."""
        label = self.label(stmt.label, env)
        if label == SPLICE:
            return scope
        name = scope.next(label)
        self.claim(name, stmt)
        return _Scope(name)

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


def _label_text(value, part: S.Expr, checker: _Checker) -> str:
    """A hole's value in a label: an integer or a word."""
    if isinstance(value, str) or isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise checker.error(f"a label's hole gives {show(value)}; it must give an integer or a word", part.span,
                        "round it: `{i+1}`, `{n//2}`")


def _net_usage(spec: S.Spec) -> str:
    if not spec.params:
        return "the network line declares no parameters: `network NAME(width=1.0)`"
    return "its parameters: " + ", ".join(p.name for p in spec.params)


def _usage(block: S.BlockDef) -> str:
    return f"usage: {block.name} " + " ".join(p.name if p.default is None else f"[{p.name}=...]"
                                              for p in block.params)


def _stem(path: str) -> str:
    base = os.path.basename(path)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem or "network"


def _labelled(spec: S.Spec, name: str) -> Span | None:
    """The span of the first label written as ``name`` anywhere in the spec (for "labelled later")."""
    todo = list(spec.body) + [stmt for block in spec.blocks for stmt in block.body]
    found = None
    while todo:
        stmt = todo.pop()
        label = getattr(stmt, "label", None)
        if label is not None and label.parts is None and label.name == name:
            if found is None or (label.span.line, label.span.col) < (found.line, found.col):
                found = label.span
        for key in ("body", "branches", "shortcut", "then", "otherwise"):
            todo.extend(getattr(stmt, key, None) or ())
    return found
