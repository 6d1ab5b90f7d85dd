"""Resource limits: what a spec may ask for before cnndsl refuses it. Each can be raised with
the environment variable named beside it, for a user who legitimately needs more."""

from __future__ import annotations

import os

CEILING = 2 ** 62  # no limit is raised past this, whatever the environment says


def _limit(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return max(1, min(int(value), CEILING)) if value else default
    except ValueError:
        return default


MAX_SPEC_BYTES = _limit("CNNDSL_MAX_SPEC_BYTES", 64_000)  # ResNet-152 is 2 KB; 64 KB parse in <= ~2 s
MAX_NESTING = _limit("CNNDSL_MAX_NESTING", 50)  # brackets and braces inside one another
MAX_OPERATORS = _limit("CNNDSL_MAX_OPERATORS", 200)  # arithmetic operators in one statement
MAX_LAYERS = _limit("CNNDSL_MAX_LAYERS", 20_000)  # after expanding blocks and repeats (~70 us each)
MAX_BLOCK_DEPTH = _limit("CNNDSL_MAX_BLOCK_DEPTH", 50)  # blocks calling blocks
MAX_INPUT_VALUES = _limit("CNNDSL_MAX_INPUT", 2 ** 31)  # values in one input sample (8.6 GB as float32)

ENV = {"spec size (bytes)": ("CNNDSL_MAX_SPEC_BYTES", MAX_SPEC_BYTES),
       "bracket nesting": ("CNNDSL_MAX_NESTING", MAX_NESTING),
       "operators per statement": ("CNNDSL_MAX_OPERATORS", MAX_OPERATORS),
       "layers": ("CNNDSL_MAX_LAYERS", MAX_LAYERS),
       "block call depth": ("CNNDSL_MAX_BLOCK_DEPTH", MAX_BLOCK_DEPTH),
       "values per input sample": ("CNNDSL_MAX_INPUT", MAX_INPUT_VALUES)}
