"""Where the next profiling round goes: undecided candidates whose decision it helps most.

NOTE: the rule follows the rollout allocator of XRPO (arXiv 2510.06672), applied to profiling
instead of rollouts. An undecided candidate's priority is the expected shrinkage of its interval
from one more round of ``r`` samples plus an exploration bonus:

    priority = h(n) * (1 - sqrt(n / (n + r))) + c * sqrt(ln(N) / n)

where ``h(n)`` is its current half-width (a t or Wilson interval shrinks like ``1/sqrt(n)``,
so ``h(n + r) ~ h(n) sqrt(n / (n + r))``), ``N`` the samples taken over all candidates and
``c`` the exploration weight. Candidates with no sample yet come first, in order. Decided
candidates get nothing.

Example: h = 10 ms after n = 4 samples and r = 4 gives an expected shrinkage of
10 * (1 - sqrt(1/2)) = 2.93 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    """One undecided candidate as the allocator sees it."""

    key: str
    n: int
    half_width: float
    """Current half-width of its interval, in units comparable across arms (e.g. relative to
    the bound), ``inf`` when unknown."""


def priority(arm: Arm, *, round_size: int, total: int, exploration: float) -> float:
    """The arm's priority (see module note); ``inf`` for an arm never sampled."""
    if arm.n == 0 or not math.isfinite(arm.half_width):
        return math.inf
    shrink = arm.half_width * (1 - math.sqrt(arm.n / (arm.n + round_size)))
    bonus = exploration * math.sqrt(math.log(max(total, 2)) / arm.n)
    return shrink + bonus


def allocate(arms: Sequence[Arm], *, slots: int, round_size: int,
             exploration: float = 0.1) -> list[str]:
    """Keys of the (at most) ``slots`` arms to profile next, highest priority first; ties keep
    the order of ``arms`` so that the allocation is deterministic."""
    total = sum(a.n for a in arms)
    ranked = sorted(
        enumerate(arms),
        key=lambda ia: (-priority(ia[1], round_size=round_size, total=total,
                                  exploration=exploration), ia[0]),
    )
    return [a.key for _, a in ranked[:slots]]
