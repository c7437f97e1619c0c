"""When a query's requests arrive: a Poisson stream at its rate, or a replayed real trace.

NOTE: an arrival process returns every arrival before the end of the simulated time and then a
given number of further ones. The extra arrivals keep the queues running past the end, so that
a batch holding the last measured requests fills as it would in a long-lived query (the
planner's batches wait for ``b`` requests, with no timeout); they are never measured.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class BaseArrivals(ABC):
    """An arrival process that can be scaled to any mean rate.

    Implementations are immutable; :meth:`times` draws only from the generator it is given, so
    the same generator state gives the same arrivals.
    """

    name: str
    """Registry key (``poisson``, ``azure``)."""

    @abstractmethod
    def times(self, *, rate: float, until: float, extra: int,
              rng: np.random.Generator) -> np.ndarray:
        """Sorted arrival times, seconds from 0: all before ``until``, then ``extra`` more.

        ``rate`` is the mean rate in requests per second (> 0).
        """


class PoissonArrivals(BaseArrivals):
    """Exponential inter-arrival times: the Poisson stream the planner assumes."""

    name = "poisson"

    def times(self, *, rate: float, until: float, extra: int,
              rng: np.random.Generator) -> np.ndarray:
        expected = rate * until
        n = int(expected + 6.0 * math.sqrt(expected) + 16) + extra
        t = np.cumsum(rng.exponential(1.0 / rate, size=n))
        while np.searchsorted(t, until) + extra > len(t):  # rare: a long run of short gaps
            more = np.cumsum(rng.exponential(1.0 / rate, size=n)) + t[-1]
            t = np.concatenate([t, more])
        return t[: int(np.searchsorted(t, until)) + extra]


class TraceArrivals(BaseArrivals):
    """Replays the inter-arrival times of a real trace, scaled to each query's rate.

    Each call starts at a random offset into the trace (drawn from ``rng``) and wraps around at
    its end, so queries replay different stretches of the same bursty record.
    """

    def __init__(self, *, gaps: Sequence[float] | np.ndarray, name: str) -> None:
        g = np.asarray(gaps, dtype=float)
        if g.ndim != 1 or len(g) < 2 or not np.all(np.isfinite(g)) or np.any(g < 0) \
                or g.sum() <= 0:
            raise ValueError("a trace needs at least two finite, non-negative gaps")
        self._unit: np.ndarray = g / g.mean()  # mean gap 1: scaling by 1/rate gives the rate
        self.name = name

    @classmethod
    def azure(cls, service: str = "conv") -> TraceArrivals:
        """The Azure LLM inference trace 2023 (``conv`` or ``code`` service), bundled in
        ``data/real/azure-llm-inference-2023`` (CC-BY 4.0; Patel et al., "Splitwise", ISCA 2024).

        Raises:
            SpecError: when the data bundle is missing or malformed.
        """
        from circinus.gen.data import read_azure_trace

        stamps = np.sort(np.array([r[0] for r in read_azure_trace(service)], dtype=float))
        return cls(gaps=np.diff(stamps), name="azure")

    @property
    def unit_gaps(self) -> np.ndarray:
        """The trace's inter-arrival times scaled to mean 1 (a copy)."""
        return self._unit.copy()

    def times(self, *, rate: float, until: float, extra: int,
              rng: np.random.Generator) -> np.ndarray:
        start = int(rng.integers(len(self._unit)))
        need = int(rate * until * 1.5 + 16) + extra
        while True:
            idx = (start + np.arange(need)) % len(self._unit)
            t = np.cumsum(self._unit[idx]) / rate
            k = int(np.searchsorted(t, until))
            if k + extra <= len(t):
                return t[: k + extra]
            need *= 2


ARRIVALS = ("poisson", "azure")
"""The arrival processes ``circinus simulate --trace`` offers."""


def make_arrivals(name: str) -> BaseArrivals:
    """The arrival process registered as ``name`` (``poisson`` or ``azure``).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "poisson":
        return PoissonArrivals()
    if name == "azure":
        return TraceArrivals.azure()
    raise ValueError(f"unknown arrival process {name!r}; choose from {', '.join(ARRIVALS)}")
