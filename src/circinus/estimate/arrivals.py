"""How variable a query's requests arrive at each stage: the arrival SCV along the pipeline.

NOTE: a stage fed by a near-constant upstream stage sees its requests spaced out more evenly
than a Poisson stream, and waits less than the M/G/c formula says (a chain of low-variance
stages, each taken as Poisson-fed, is pessimistic: the more so the longer the chain). The
estimator therefore carries, per stage of a query, the *squared coefficient of variation* (SCV)
``c^2`` of the gaps between the requests arriving there (1 for Poisson, 0 for a clock) and
propagates it as Whitt's Queueing Network Analyzer does (Whitt, "The Queueing Network
Analyzer", Bell System Technical Journal 62(9), 1983):

* a source emits Poisson arrivals: ``c^2 = 1``;
* a replica group of ``m`` replicas at utilisation ``rho`` with service SCV ``c_s^2`` passes on
  ``c_d^2 = 1 + (1 - rho^2)(c_a^2 - 1) + rho^2 (c_s^2 - 1) / sqrt(m)``
  (:func:`departure_scv`; for one server it is the exact SCV of the stationary gap between
  departures of M/G/1, ``rho^2 c_s^2 + 1 - rho^2``);
* a stream split at random with probability ``p`` (a request routed to one device of several)
  has ``p c^2 + 1 - p`` (:func:`split_scv`); streams merged (a deployment fed by several
  queries, the devices of a stage feeding the next) have the rate-weighted mean
  (:func:`merge_scv`);
* a random transfer delay of variance ``s^2`` shuffles the gaps: with ``lam`` the rate, ``c^2``
  moves towards 1 as ``1 + (c^2 - 1) / (1 + lam^2 s^2)`` (:func:`jitter_scv`: unchanged for a
  constant delay, Poisson-like when the delay's spread is many gaps);
* a join is ready when its last input is: it takes its inputs' largest SCV.

Only smoothing is modelled: every SCV is kept within ``[0, 1]``, so that an estimate with it is
never above the Poisson one (the searches' prunes stay exact, and a stage the planner knows too
little about falls back to today's M/G/c). Two cases are therefore taken as Poisson-fed: a
stage after a *batching* stage (its requests leave in bursts of a batch, which a GI renewal
stream cannot say) and a shared deployment before the selection has sized it (its co-tenants'
arrivals are unknown; the worst state of its level, :mod:`circinus.estimate.analytic`, is kept).
The SCVs enter the wait through :func:`~circinus.estimate.queueing.batch_queue_sojourn`, which
shortens the *mean* wait only and keeps the Poisson-fed spread: the waits along a chain are
positively correlated (a request that waited behind a burst at one stage leaves in a tight
train that queues again where a later stage is slower), and summing smoothed waits as
independent put the p95 of a chain 12-17 % *below* the simulator's where the slowest stage came
last. With the Poisson-fed spread the chain's mean and p50/p95/p99 were never more than 1 %
below the simulator's on the chains of tests/estimate/test_arrivals.py, and 0-26 % above (the
Poisson-fed estimate: 1-60 % above).

Example: two stages of 10 ms with cv 0.1 at 75 % load behind a Poisson source: the second sees
``c_a^2 = 1 + 0.4375 (1 - 1) + 0.5625 (0.01 - 1) = 0.443``, and its mean wait drops from 15.2
ms (M/G/1) to 5.8 ms; the simulator's FIFO queue waits 1.9 ms there (two equal constant stages:
only the first queues, Friedman 1965), which this renewal model does not reach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SCV_STEP = 0.05
"""Arrival SCVs are rounded *up* to this grid before a stage is estimated: the estimate is then
a slight overestimate of the unrounded one, and a search meets few distinct SCVs per stage
option (stage estimates are memoised by it)."""


def departure_scv(utilization: float, arrival_scv: float, service_scv: float,
                  servers: int) -> float:
    """SCV of the gaps between the departures of a GI/G/m queue (Whitt's linking equation, see
    the module note), kept within ``[0, 1]``.

    Examples: M/M/1 passes Poisson on (Burke): ``departure_scv(0.7, 1, 1, 1) == 1``; an M/D/1
    at 80 % load smooths it to ``1 - 0.8^2 = 0.36``.
    """
    rho = min(max(utilization, 0.0), 1.0)
    out = 1.0 + (1.0 - rho * rho) * (arrival_scv - 1.0) + rho * rho * (service_scv - 1.0) / (
        math.sqrt(max(servers, 1)))
    return min(1.0, max(0.0, out))


def split_scv(scv: float, share: float) -> float:
    """SCV of the part of a stream of SCV ``scv`` routed at random with probability ``share``.

    Example: half of a clock-like stream (``scv = 0``) has SCV 0.5.
    """
    p = min(max(share, 0.0), 1.0)
    return p * scv + 1.0 - p


def merge_scv(parts: list[tuple[float, float]]) -> float:
    """SCV of the superposition of streams ``(rate, scv)``: their rate-weighted mean (QNA).

    Example: a clock-like stream merged with a Poisson stream of the same rate has SCV 0.5.
    """
    total = sum(rate for rate, _ in parts)
    if total <= 0.0:
        return 1.0
    return sum(rate * scv for rate, scv in parts) / total


def jitter_scv(scv: float, rate: float, delay_var: float) -> float:
    """SCV of a stream of SCV ``scv`` and ``rate`` requests per second after a random delay of
    variance ``delay_var`` s^2 (module note). Example: a delay spread of one mean gap
    (``rate^2 delay_var = 1``) takes a clock halfway to Poisson, 0.5."""
    if not delay_var > 0.0 or not math.isfinite(delay_var):
        return scv if delay_var == 0.0 else 1.0
    return 1.0 + (scv - 1.0) / (1.0 + rate * rate * delay_var)


def rounded_scv(scv: float) -> float:
    """``scv`` rounded up to :data:`SCV_STEP`, within ``[0, 1]`` (a non-finite SCV is 1)."""
    if not math.isfinite(scv) or scv >= 1.0:
        return 1.0
    return min(1.0, math.ceil(max(scv, 0.0) / SCV_STEP - 1e-9) * SCV_STEP)


def inflow_scv(inputs: Iterable[tuple[float, float]], rate: float) -> float:
    """SCV of the requests ready at a stage whose inputs leave their predecessors with SCV
    ``scv`` and cross a transfer of variance ``delay_var`` s^2, ``(scv, delay_var)`` each (a
    source leaves with 1), ``rate`` requests per second: each input jittered by its transfer
    (:func:`jitter_scv`), and the largest of them at a join (module note)."""
    return max((jitter_scv(scv, rate, var) for scv, var in inputs), default=1.0)
