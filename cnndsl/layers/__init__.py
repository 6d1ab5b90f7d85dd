"""Layer kinds. How to add one (one file, plus its test rows):

1. Pick the family file (conv, pool, norm, dense, activation) or start a new one (then import it
   below).
2. Write a frozen dataclass subclassing ``Layer``; its docstring's first line is its DSL syntax,
   then ``: `` and a short description (the README's layer table is made from it). Each field
   declared with ``arg(convert, default, pos=..., words=...)`` IS an argument: ``pos=True``
   fields take numbers/sizes in order, ``words`` take bare words (``relu``, ``ceil``).
3. Implement ``infer`` (output shape, raising RuleError with a hint), and where they apply
   ``params``, ``macs`` and ``emit`` (ONNX through the builder), side by side. Layers never import
   numpy or onnx: counting must stay fast.
4. State its facts as class attributes (see ``Layer``): ``category``, ``onnx_ops``, ``counts``,
   and where they hold ``fusable`` (an activation a conv may fuse), ``relu_like`` (He init for
   the weights before it), ``init_transparent``, ``folds_into_previous``/``affine``,
   ``absorbs_affine``/``with_bias``. Nothing outside this package matches kind names.
5. Decorate it with ``@register("name", *aliases)``.
6. Add rows for it to tests/test_layers.py (a test fails for a kind without rows) and, for an
   element-wise or windowed op, to tests/reference.py's NumPy references.
7. Run ``python tools/regen.py``: it rewrites the README's layer table and the TextMate grammar's
   layer-kind pattern (tests fail while they are stale).

The grammar never changes for a new kind.
"""

from __future__ import annotations

from cnndsl.layers import (  # noqa: F401  (registers the kinds)
    activation,
    conv,
    convtranspose,
    crop,
    dense,
    droppath,
    layernorm,
    layerscale,
    linear,
    norm,
    pool,
    resize,
    shuffle,
)
from cnndsl.layers.base import REGISTRY, Layer, bind, usage
from cnndsl.layers.merge import AddBranches, AddResidual, ConcatChannels, MulBranches, MulGate, SplitChannels

__all__ = ["REGISTRY", "Layer", "bind", "usage", "AddBranches", "AddResidual", "ConcatChannels", "MulBranches",
           "MulGate", "SplitChannels"]
