"""Per-query request rates cut from the Azure LLM inference trace 2023 (conversation service).

NOTE: the trace is one hour of production arrivals (19,366 requests, ~5.5 req/s on average,
bursty). A query's rate is the rate of a seeded slice of it, mapped to the pipeline's rate
range and snapped to a small grid:

1. *slice*: a window of :data:`WINDOW_S` seconds starting at a seeded uniform time; its rate is
   the number of requests in it over the window length (10-s windows of the trace range from
   0.8 to 9.8 req/s; the quartiles are 4.5 and 6.4);
2. *rescale*: log-affine, so the trace's 1st..99th percentile of window rates spans the
   pipeline's ``[low, high]`` (``log r = log low + (log x - log q01) / (log q99 - log q01) *
   (log high - log low)``), clipped to the range. The ordering and relative burstiness of the
   slices are kept; the level is the pipeline's. Worked example (vision, 1..20 req/s; the
   trace's q01, q99 are 2.15, 8.8 req/s): a slice at the trace median 5.3 req/s lands at
   exp(log 20 * log(5.3 / 2.15) / log(8.8 / 2.15)) = 6.8 req/s, snapped to 8;
3. *snap*: to the nearest :data:`RATE_GRID` value (in log space) within the range, because
   the planner shares one search among queries of equal rate, so a grid bounds its work.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from circinus.gen.data import Request

WINDOW_S = 10.0
"""Length of a trace slice, seconds."""
RATE_GRID = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0)
"""The rates a generated query may have, req/s."""
_TAIL = (1.0, 99.0)  # percentiles of the trace's window rates mapped onto the range ends


@dataclass(frozen=True)
class TraceRates:
    """Arrival times of a trace and the spread of its window rates (see module note)."""

    times: tuple[float, ...]
    """Seconds since the first request, sorted."""
    low: float
    """1st percentile of the rates of consecutive :data:`WINDOW_S` windows, req/s."""
    high: float
    """99th percentile of the same, req/s."""

    @classmethod
    def from_trace(cls, trace: Sequence[Request]) -> TraceRates:
        """Arrival times and window-rate percentiles of ``trace`` (sorted by time)."""
        t0 = trace[0][0]
        times = tuple(r[0] - t0 for r in trace)
        windows = int(times[-1] // WINDOW_S)
        assert windows >= 1, "the trace must span at least one window"
        counts, _ = np.histogram(times, bins=np.arange(windows + 1) * WINDOW_S)
        low, high = np.percentile(counts / WINDOW_S, _TAIL)
        return cls(times=times, low=float(low), high=float(high))

    def slice_rate(self, rng: random.Random) -> float:
        """The rate of one seeded :data:`WINDOW_S` slice, req/s (may be 0 in a gap)."""
        start = rng.uniform(0.0, self.times[-1] - WINDOW_S)
        first = bisect.bisect_left(self.times, start)
        end = bisect.bisect_left(self.times, start + WINDOW_S)
        return (end - first) / WINDOW_S

    def rescale(self, rate: float, low: float, high: float) -> float:
        """Map a trace rate log-affinely onto ``[low, high]`` (clipped); see module note."""
        x = max(rate, self.low)
        span = math.log(self.high) - math.log(self.low)
        pos = min(1.0, (math.log(x) - math.log(self.low)) / span)
        return math.exp(math.log(low) + pos * (math.log(high) - math.log(low)))

    def draw(self, rng: random.Random, low: float, high: float) -> float:
        """One query's rate on the grid within ``[low, high]``: slice, rescale, snap."""
        return snap(self.rescale(self.slice_rate(rng), low, high), low, high)


def snap(rate: float, low: float, high: float) -> float:
    """The :data:`RATE_GRID` value within ``[low, high]`` nearest to ``rate`` in log space.

    Ties go to the lower value. Example: ``snap(6.0, 1, 20) == 5.0``
    (log 6/5 = 0.18 < log 8/6 = 0.29).
    """
    grid = [g for g in RATE_GRID if low <= g <= high]
    assert grid, f"no grid rate within [{low}, {high}]"
    return min(grid, key=lambda g: (abs(math.log(rate / g)), g))
