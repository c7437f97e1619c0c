"""FIFO queue kernels: pure functions from sorted ready times and service times to start times.

NOTE: queries never share replicas, so each replica group (one stage of one query on one device)
is a queue of its own and is simulated in one call, not event by event. A single server obeys
Lindley's recursion ``D_k = max(A_k, D_{k-1}) + S_k``, whose unrolled form
``D_k = C_k + max_{j<=k} (A_j - C_{j-1})`` (``C`` the running sum of service times) is two numpy
scans. ``c`` servers taking jobs in order follow Kiefer and Wolfowitz: job ``k`` starts when it is
ready and the earliest-free server is free; a heap of ``c`` free times does it in one tight loop.
Batches are formed by index arithmetic: with requests in FIFO order, batch ``k`` holds requests
``k*b .. k*b+b-1`` and is ready when its last request is (a batch waits for ``b`` requests, as
the planner assumes; there is no timeout). A last batch that never fills is never served.
"""

from __future__ import annotations

import heapq

import numpy as np


def fifo_starts(ready: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """Start times of jobs served first come, first served by ``servers`` identical servers.

    ``ready`` is sorted (non-decreasing; ``inf`` for a job that never arrives) and ``service``
    holds each job's service time; finish times are ``start + service``. Example: one server,
    jobs ready at 0, 0, 5 with service 2 start at 0, 2, 5; two servers start them at 0, 0, 5.
    """
    n = len(ready)
    if n == 0:
        return np.empty(0)
    if servers == 1:
        done = np.cumsum(service)
        before = done - service  # work of the jobs ahead, if they never idled
        finish: np.ndarray = done + np.maximum.accumulate(ready - before)
        start: np.ndarray = finish - service
        return start
    free = [0.0] * servers
    starts = [0.0] * n
    replace = heapq.heapreplace
    for k, (a, s) in enumerate(zip(ready.tolist(), service.tolist(), strict=True)):
        f = free[0]
        t = a if a > f else f
        replace(free, t + s)
        starts[k] = t
    return np.asarray(starts)


def batch_ready(ready_sorted: np.ndarray, batch: int) -> np.ndarray:
    """Ready times of the full batches of requests ready at ``ready_sorted`` (FIFO order).

    A batch is ready when its ``batch``-th request is: ``ready_sorted[b-1::b]``, leaving out a
    last batch that does not fill. Example: requests at 1, 2, 3, 4, 5 in batches of 2 give
    batches ready at 2 and 4; the request at 5 waits for a partner that never comes.
    """
    full = len(ready_sorted) // batch
    return ready_sorted[batch - 1: full * batch: batch]


def busy_seconds(start: np.ndarray, finish: np.ndarray, lo: float, hi: float) -> float:
    """Server-seconds of the intervals ``[start, finish]`` that fall inside ``[lo, hi]``."""
    overlap = np.minimum(finish, hi) - np.maximum(start, lo)
    return float(np.sum(overlap, where=overlap > 0, initial=0.0))
