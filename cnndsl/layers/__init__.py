"""Layer kinds. How to add one:

1. Pick the family file (conv, pool, norm, dense, activation) or start a new one.
2. Write a frozen dataclass subclassing ``Layer``; its docstring's first line is its DSL syntax.
   Each field declared with ``arg(convert, default, pos=..., words=...)`` IS an argument:
   ``pos=True`` fields take numbers/sizes in order, ``words`` take bare words (``relu``, ``ceil``).
3. Implement ``infer`` (output shape, raising RuleError with a hint), and where they apply
   ``params``, ``macs`` and ``emit`` (ONNX through the builder), side by side.
4. Decorate it with ``@register("name", *aliases)`` and import the module below.
5. Add rows for it to tests/test_layers.py (a test fails for a kind without rows).
6. Add its name to the layer-kind pattern of editors/cnndsl.tmLanguage.json (a test fails until
   you do, and prints the pattern to paste; the Pygments lexer reads the registry itself).

The grammar never changes for a new kind.
"""

from __future__ import annotations

from cnndsl.layers import activation, conv, dense, norm, pool  # noqa: F401  (registers the kinds)
from cnndsl.layers.base import REGISTRY, Layer, bind, usage
from cnndsl.layers.merge import AddResidual, ConcatChannels

__all__ = ["REGISTRY", "Layer", "bind", "usage", "AddResidual", "ConcatChannels"]
