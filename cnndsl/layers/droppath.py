"""Stochastic depth (drop path): a training-time regulariser, the identity at inference."""

from __future__ import annotations

from dataclasses import dataclass

from cnndsl.errors import RuleError
from cnndsl.layers.base import arg, number, register
from cnndsl.layers.dense import Dropout


def _probability(v, field):
    v = number(v, field)
    if not 0 <= v <= 1:
        raise RuleError(f"droppath rate must be in [0, 1], not {v:g}", "the chance of dropping the whole branch",
                        field=field)
    return v


@register("droppath", "stochastic_depth")
@dataclass(frozen=True)
class DropPath(Dropout):
    """droppath [RATE]: stochastic depth; listed in summaries; left out of the inference graph (RATE 0.1 by default)

    Training drops a residual branch for a whole sample with probability RATE (torchvision's
    StochasticDepth, mode "row"); at inference it passes its input through, as dropout does, whose
    traits it shares.
    """

    rate: float = arg(_probability, 0.1, pos=True)
