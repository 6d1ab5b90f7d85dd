"""The words of the language, for highlighters (the Pygments lexer, the playground's editor): keywords
from the grammar and layer kinds from the layer registry, so neither list can drift from the language."""

from __future__ import annotations

import re

from cnndsl.lang.parse import grammar_text
from cnndsl.layers import REGISTRY


def grammar_keywords() -> tuple[str, ...]:
    """The words the grammar reserves (``network``, ``repeat``, ...), in their grammar order; less
    those that are also layer kinds (``crop``: `concat crop` and the `crop` layer look alike)."""
    found: list[str] = []
    for word in re.findall(r'"([A-Za-z_]+)"', grammar_text()):
        if word not in found and word not in REGISTRY:
            found.append(word)
    return tuple(found)


def layer_kinds() -> tuple[str, ...]:
    """Every registered layer kind and alias, longest first (so no kind hides a longer one)."""
    return tuple(sorted(REGISTRY, key=lambda k: (-len(k), k)))
