"""The layer-kind machinery: argument schemas, binding written arguments to fields, the registry."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from cnndsl.errors import RuleError, did_you_mean
from cnndsl.lang.show import fmt_shape, show

REGISTRY: dict[str, type[Layer]] = {}
_MISSING = object()

# What a kind is, for the views: diagrams colour boxes and charts group parameters by category.
CATEGORIES = frozenset({"conv", "filter", "pool", "dense", "norm", "activation", "output", "reshape",
                        "regularization", "merge"})


def register(*names: str):
    """Class decorator: make a layer kind available in specs under ``names``. Rejects duplicates,
    an unknown category and a kind without its syntax line."""

    def deco(cls):
        if cls.category not in CATEGORIES:
            raise ValueError(f"{cls.__name__}.category {cls.category!r} is not one of {sorted(CATEGORIES)}")
        if not (cls.__doc__ or "").strip():
            raise ValueError(f"{cls.__name__} needs a docstring whose first line is its syntax")
        for name in names:
            if name in REGISTRY:
                raise ValueError(f"layer kind {name!r} registered twice ({REGISTRY[name].__name__}, {cls.__name__})")
            REGISTRY[name] = cls
        cls.kind = names[0]
        return cls

    return deco


def aliases(cls) -> list[str]:
    """Every name ``cls`` is registered under, its kind first."""
    return [cls.kind] + [name for name, c in REGISTRY.items() if c is cls and name != cls.kind]


class KindsWith:
    """The registered names whose class has ``trait`` set, read when asked, so that a kind
    registered later, in a file of its own, is included (e.g. the activations a conv can fuse)."""

    def __init__(self, trait: str) -> None:
        self.trait = trait

    def names(self) -> list[str]:
        return sorted(name for name, cls in REGISTRY.items() if getattr(cls, self.trait))

    def __contains__(self, name) -> bool:
        cls = REGISTRY.get(name) if isinstance(name, str) else None
        return cls is not None and bool(getattr(cls, self.trait))

    def __iter__(self):
        return iter(self.names())


def arg(convert: Callable[[Any, str], Any], default: Any = _MISSING, *, pos: bool = False,
        words: frozenset[str] = frozenset(), doc: str = "", tensor: bool = False) -> Any:
    """Declare one argument of a layer kind.

    ``convert(value, field)`` checks and normalises the written value (raising RuleError);
    ``pos`` lets numbers and sizes fill it positionally, in field order; ``words`` are bare words
    (``relu``, ``same``, ``ceil``) that, written positionally, go to this field. ``tensor``: the
    argument names an earlier tensor by its label (``to=input``); the checker looks it up and the
    converter gets a TensorRef, which carries the tensor's shape.
    """
    words = words if isinstance(words, KindsWith) else frozenset(words)
    return dataclasses.field(metadata={"convert": convert, "default": default, "pos": pos,
                                       "words": words, "doc": doc, "tensor": tensor})


class TensorRef(str):
    """An argument naming an earlier tensor (``upsample to=input``): the label as written, which is
    how it shows, and ``shape``, the tensor's shape (per sample), looked up by the checker."""

    shape: tuple[int, ...]

    def __new__(cls, label: str, shape: tuple[int, ...]) -> TensorRef:
        ref = super().__new__(cls, label)
        ref.shape = tuple(shape)
        return ref

    def __reduce__(self):
        return TensorRef, (str(self), self.shape)


def tensor_ref(v, field):
    """A converter for a ``tensor=True`` argument: the TensorRef the checker made, or None."""
    if v is None or isinstance(v, TensorRef):
        return v
    raise RuleError(f"{field} names a tensor by its label (e.g. {field}=input), not {show(v)}", field=field)


def size_pair(v, field):
    """None, or an output size: an int or HxW, both positive."""
    return None if v is None else positive_pair(v, field)


@dataclass(frozen=True)
class Layer:
    """Base of every layer kind. Subclasses are frozen dataclasses whose fields are their arguments."""

    kind: ClassVar[str] = "?"
    fused_act: ClassVar[bool] = False  # has an ``act`` field that becomes its own node
    n_inputs: ClassVar[int] = 1

    # Every per-kind fact lives here, on the class; nothing elsewhere matches kind names.
    category: ClassVar[str] = "other"  # one of CATEGORIES (diagram colours, chart groups)
    fusable: ClassVar[bool] = False  # may be written as another layer's ACT: `conv 64 3x3 relu`
    relu_like: ClassVar[bool] = False  # weights that feed it get He initialisation (else Glorot)
    init_transparent: ClassVar[bool] = False  # the init rule looks through it to the next layer
    folds_into_previous: ClassVar[bool] = False  # --fold-bn merges it into the layer before (see affine)
    absorbs_affine: ClassVar[bool] = False  # can take a folded per-output-channel affine (see with_bias)
    counts: ClassVar[str] = "none"  # its parameters, in words (the README's layer table)
    onnx_ops: ClassVar[str] = ""  # the ONNX operators it becomes (the README's layer table)

    def infer(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """Output shape for the input shapes (per sample, no batch), or RuleError."""
        raise NotImplementedError

    def params(self, prefix: str, shapes: list[tuple[int, ...]], out: tuple[int, ...]) -> list:
        """The weight tensors (ir.Param) this layer owns."""
        return []

    def macs(self, shapes: list[tuple[int, ...]], out: tuple[int, ...]) -> int:
        """Multiply-accumulates for one sample (conv and dense only, by convention)."""
        return 0

    def emit(self, b, node, xs: list[str]) -> str:
        """Add ONNX nodes through the builder ``b``; return the output value's name."""
        raise NotImplementedError

    def describe(self) -> str:
        """Key options, short, for summaries."""
        parts = []
        for f in schema(type(self)):
            value = getattr(self, f.name)
            if f.metadata["default"] is not _MISSING and value == _convert_default(f):
                continue
            if f.name == "act":
                continue
            bare = f.metadata["pos"] or (isinstance(value, str) and value in f.metadata["words"])
            parts.append(show(value) if bare else f"{f.name}={show_option(value)}")
        return " ".join(parts)


def _immutable(self, name, value):
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}: a layer is immutable")


# A kind with no arguments is a plain subclass (no dataclass of its own, which costs most of a
# millisecond at every start); the frozen dataclass's own __setattr__ would let such a subclass's
# instances take new attributes, so the base refuses every assignment itself.
Layer.__setattr__ = _immutable
Layer.__delattr__ = lambda self, name: _immutable(self, name, None)


def fused_activation() -> Any:
    """The optional ACT argument of conv, fixedconv and dense: any fusable kind, as a bare word."""
    return arg(kind_with("fusable"), None, words=KindsWith("fusable"))


def need_channels(what: str, shape) -> tuple[int, ...]:
    """``shape`` when it has a channel axis to work along (CxHxW, or C flat features), else RuleError."""
    if len(shape) not in (1, 3):
        raise RuleError(f"{what} needs a CxHxW or a flat input, got {fmt_shape(shape)}")
    return shape


def show_option(value) -> str:
    """An option value as briefly as it can be written back: 2x2 -> 2, (1, 1, 1, 1) -> 1, (1, 2, 1, 2) -> 1x2."""
    if isinstance(value, tuple) and len(value) == 4 and value[:2] == value[2:]:
        value = value[:2]
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, tuple) and len(value) == 4:
        return "(" + ", ".join(map(str, value)) + ")"
    return show(value)


@functools.cache
def schema(cls) -> tuple[dataclasses.Field, ...]:
    """A kind's arguments, in order (asked once per layer statement, so kept)."""
    return tuple(f for f in dataclasses.fields(cls) if "convert" in f.metadata)


def _convert_default(f: dataclasses.Field):
    return f.metadata["convert"](f.metadata["default"], f.name)


def usage(cls) -> str:
    """The DSL syntax line from the class docstring."""
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else cls.kind


def bind(cls, args: list[tuple[str | None, Any, int]]) -> tuple[Layer, dict[str, int]]:
    """Bind evaluated arguments ``(keyword or None, value, index)`` to the fields of ``cls``.

    Returns the layer and, for each field that was written, the index of the argument that set
    it (so errors can point at it). Raises RuleError with ``field`` set to '#index' for an
    argument that fits nowhere.
    """
    fields = schema(cls)
    by_name = {f.name: f for f in fields}
    chosen: dict[str, tuple[Any, int]] = {}
    positional = [f for f in fields if f.metadata["pos"]]
    for key, value, index in args:
        if key is None:
            target = _positional_target(cls, fields, positional, chosen, value, index)
        else:
            if key not in by_name:
                hint = did_you_mean(key, by_name) or f"{cls.kind} takes: {', '.join(by_name) or 'no options'}"
                if isinstance(value, str) and any(value in f.metadata["words"] for f in fields):
                    hint = f"write {value} as a bare word, without '{key}=': `{cls.kind} ... {value}`"
                raise RuleError(f"unknown option '{key}' for {cls.kind}", hint, field=f"#{index}")
            target = by_name[key]
        if target.name in chosen:
            raise RuleError(f"{target.name} is given twice", f"usage: {usage(cls)}", field=f"#{index}")
        chosen[target.name] = (value, index)
    values, where = {}, {}
    for f in fields:
        if f.name in chosen:
            raw, index = chosen[f.name]
            where[f.name] = index
        elif f.metadata["default"] is _MISSING:
            raise RuleError(f"{cls.kind} needs {f.name.upper()}", f"usage: {usage(cls)}", field="#kind")
        else:
            raw = f.metadata["default"]
        try:
            values[f.name] = f.metadata["convert"](raw, f.name)
        except RuleError as exc:
            if f.name in where:  # point at the argument that was written
                exc.field = f"#{where[f.name]}"
                exc.hint = exc.hint or _swapped(cls, positional, chosen)
            raise
    return cls(**values), where


def _swapped(cls, positional, chosen) -> str | None:
    """A hint when the first two positional arguments fit only the other way round (Keras writes
    `Conv2D(kernel, filters)`-like orders: `conv 3x3 32` for `conv 32 3x3`)."""
    written = [f for f in positional if f.name in chosen][:2]
    if len(written) < 2 or written != positional[:2]:
        return None
    (a, _), (b, _) = chosen[written[0].name], chosen[written[1].name]
    try:
        written[0].metadata["convert"](b, written[0].name)
        written[1].metadata["convert"](a, written[1].name)
    except RuleError:
        return None
    return f"did you mean `{cls.kind} {show(b)} {show(a)}`? {cls.kind} takes {written[0].name.upper()} first"


def _positional_target(cls, fields, positional, chosen, value, index):
    if isinstance(value, str):
        for f in fields:
            if value in f.metadata["words"]:
                return f
        words = set().union(*(f.metadata["words"] for f in fields))
        hint = did_you_mean(value, words) or f"usage: {usage(cls)}"
        raise RuleError(f"unexpected word '{value}' for {cls.kind}", hint, field=f"#{index}")
    for f in positional:
        if f.name not in chosen:
            return f
    raise RuleError(f"too many arguments for {cls.kind}: {show(value)} fits no parameter",
                    f"usage: {usage(cls)}", field=f"#{index}")


# -- converters: (value, field) -> normalised value, or RuleError ---------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def positive_int(v, field):
    if not _is_int(v) or v <= 0:
        raise RuleError(f"{field} must be a positive integer, not {show(v)}", field=field)
    return v


def nonneg_int(v, field):
    if not _is_int(v) or v < 0:
        raise RuleError(f"{field} must be an integer >= 0, not {show(v)}", field=field)
    return v


def positive_pair(v, field):
    """An int or HxW, both positive: kernel, stride, dilation."""
    pair = (v, v) if _is_int(v) else v
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(_is_int(x) for x in pair)):
        raise RuleError(f"{field} must be an integer or HxW (e.g. 3 or 3x5), not {show(v)}", field=field)
    if min(pair) <= 0:
        raise RuleError(f"{field} must be positive, not {show(v)}", field=field)
    return pair


def boolean(v, field):
    if isinstance(v, bool):
        return v
    raise RuleError(f"{field} must be true or false, not {show(v)}", field=field)


FLOAT32_MAX = 3.4028234663852886e38  # ONNX stores float attributes and weights as float32


def float32(v: float, field: str) -> float:
    """``v`` as a float, or a RuleError where float32 (what the model stores) cannot hold it."""
    v = float(v)
    if not math.isfinite(v) or abs(v) > FLOAT32_MAX:
        raise RuleError(f"{field} value {show(v)} is beyond float32's range (+-3.4e38)",
                        "the model stores it as float32, where it would be infinite", field=field)
    return v


def number(v, field):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RuleError(f"{field} must be a number, not {show(v)}", field=field)
    return float32(v, field)


def positive_number(v, field):
    v = number(v, field)
    if v <= 0:
        raise RuleError(f"{field} must be positive, not {show(v)}", field=field)
    return v


def padding(v, field):
    """same | valid | P | PHxPW | (top, left, bottom, right)."""
    if v == "same":
        return "same"
    if v == "valid":
        return (0, 0, 0, 0)
    pads = (v, v) if _is_int(v) else v
    if isinstance(pads, tuple) and all(_is_int(x) for x in pads) and len(pads) in (2, 4):
        if min(pads) < 0:
            raise RuleError(f"padding must be >= 0, not {show(v)}", field=field)
        return pads * 2 if len(pads) == 2 else pads
    raise RuleError(f"pad must be same, valid, P, PHxPW or (top, left, bottom, right), not {show(v)}",
                    field=field)


def kind_with(trait: str):
    """A converter accepting the registered kinds whose class has ``trait``, or None."""
    return _member_of(KindsWith(trait))


def one_of(*choices: str):
    """A converter accepting one of ``choices``, or None."""
    return _member_of(choices)


def _member_of(choices):
    def convert(v, field):
        if v is None or v in choices:
            return v
        hint = did_you_mean(str(v), choices) if isinstance(v, str) else None
        raise RuleError(f"{field} must be one of {', '.join(choices)}, not {show(v)}", hint, field=field)

    return convert
