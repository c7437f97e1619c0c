"""Bounds as they are reported: :data:`DIGITS` significant digits, rounded in the relaxing
direction, and the searches over them (:mod:`circinus.whynot.nearest`).

Example: a plan at 212.3417 ms is reported as ``latency_ms: 212.4`` (:func:`round_relaxed`); one
unit tighter in the last digit (:func:`unit`), 212.3, is below the plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

DIGITS = 4
"""Significant digits of a reported bound."""


def unit(value: float) -> int:
    """The exponent of the last of :data:`DIGITS` significant digits of ``value``."""
    return math.floor(math.log10(abs(value))) - (DIGITS - 1)


def round_relaxed(value: float, *, down: bool) -> float:
    """``value`` to :data:`DIGITS` significant digits, rounded up (or ``down``): 212.3417 ->
    212.4, and with ``down`` 0.70318 -> 0.7031."""
    if value == 0 or not math.isfinite(value):
        return value
    exp = unit(value)
    step = 10.0 ** exp
    steps = math.floor(value / step + 1e-9) if down else math.ceil(value / step - 1e-9)
    return round(steps * step, -exp) if exp < 0 else float(steps * step)


def distinct(values: Iterable[float], current: float, lower: bool,
             limit: int) -> Iterator[float]:
    """``values`` (from the least relaxed) clipped to ``current`` (none tighter than the SLO),
    without repeats, at most ``limit`` of them."""
    last = None
    count = 0
    for v in values:
        bound = min(v, current) if lower else max(v, current)
        if bound == last:
            continue
        if count >= limit:
            return
        last, count = bound, count + 1
        yield bound


def bisect(admits: Callable[[float], bool], current: float, found: float, *,
           down: bool) -> float:
    """The least relaxed bound between ``current`` and ``found`` (which admits) on the grid of
    :data:`DIGITS` significant digits of the answer, by bisection: first on the grid of
    ``found``, then, where the answer is of a smaller magnitude, again between it and the grid
    point below it on its own grid (e.g. 186 on the grid of 1797, then 185.7 on that of 186).
    Assumes that admission is monotone in the bound, as it is for a search that sees every
    plan."""
    if found == 0 or admits(current):
        return current
    sign = -1.0 if down else 1.0
    below = current  # the most relaxed bound known not to admit
    while True:
        exp = unit(found)
        step = 10.0 ** exp

        def value(k: int, exp: int = exp, step: float = step) -> float:
            v = sign * k * step
            return round(v, -exp) if exp < 0 else v

        lo = math.floor(sign * below / step + 1e-9)
        hi = math.ceil(sign * found / step - 1e-9)
        if not admits(value(hi)):
            return found
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if admits(value(mid)):
                hi = mid
            else:
                lo = mid
        answer = value(hi)
        if answer == 0 or unit(answer) >= exp:
            return answer
        below = min(below, value(lo)) if down else max(below, value(lo))
        found = answer
